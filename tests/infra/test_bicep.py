"""Every Bicep file in infra/ parses (pycep-parser: no Bicep compiler installs from the package
registries), and holds the resources and outputs the documentation tells people to use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pycep import BicepParser

from tasks.settings import Settings

INFRA = Path(__file__).parents[2] / "infra"
#: What users read: the README and the documentation site.
README = "\n".join(
    path.read_text()
    for path in [
        Path(__file__).parents[2] / "README.md",
        *(Path(__file__).parents[2] / "docs").rglob("*.md"),
    ]
)

#: file -> (resource types it must declare, outputs the README names)
EXPECTED = {
    "storage.bicep": (
        {
            "Microsoft.Storage/storageAccounts",
            "Microsoft.ManagedIdentity/userAssignedIdentities",
            "Microsoft.EventGrid/systemTopics",
            "Microsoft.Web/sites",
        },
        {
            "storageAccountName",
            "blobAccountUrl",
            "pipelineIdentityClientId",
            "pipelineIdentityId",
            "functionAppName",
        },
    ),
    "search.bicep": ({"Microsoft.Search/searchServices"}, {"searchEndpoint"}),
    "serve.bicep": (
        {"Microsoft.App/managedEnvironments", "Microsoft.App/containerApps"},
        {"serviceUrl", "containerAppName"},
    ),
}


def parsed(name: str) -> dict:
    return BicepParser().parse(file_path=INFRA / name)


def test_every_bicep_file_is_checked() -> None:
    assert {path.name for path in INFRA.glob("*.bicep")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_resources_and_outputs_are_there_and_in_the_readme(name: str) -> None:
    template = parsed(name)
    types = {resource["type"] for resource in template["resources"].values()}
    resource_types, outputs = EXPECTED[name]
    assert resource_types <= types
    assert outputs <= set(template["outputs"])
    assert f"infra/{name}" in README
    for output in outputs:
        assert output in README, f"the README does not say what {output} is for"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_settings_a_template_sets_exist(name: str) -> None:
    text = (INFRA / name).read_text()
    for variable in re.findall(r"AUDIO_EMBEDDINGS_([A-Z0-9_]+)", text):
        assert variable.lower() in Settings.model_fields, f"{name}: AUDIO_EMBEDDINGS_{variable}"


def test_the_service_is_never_open_beyond_loopback() -> None:
    service = parsed("serve.bicep")["resources"]["service"]["config"]
    container = service["properties"]["template"]["containers"][0]
    text = (INFRA / "serve.bicep").read_text()
    assert container["command"] == ["audio-embeddings", "serve"]
    # it listens on 0.0.0.0, so it must be told whose tokens to accept
    assert "AUDIO_EMBEDDINGS_SERVE_ENTRA_AUDIENCE" in text
    assert "AUDIO_EMBEDDINGS_SERVE_HOST', value: '0.0.0.0'" in text
    assert "secretRef: 'serve-api-key'" in text  # the key is a secret, not a plain value
