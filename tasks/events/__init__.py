"""Events in and out of the pipeline: the ``azure.blob.created`` contract shared with the Event
Grid bridge (blob), the polling sensor (sensor), ``audio.anomaly.detected`` (anomaly), emitting
them to Prefect (emit), and where polling flows keep their place (cursors)."""
