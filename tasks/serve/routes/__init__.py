"""The service's routes, one router per concern; ``tasks.serve.app`` mounts them."""
