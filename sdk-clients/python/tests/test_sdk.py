"""The Python SDK against a live `berth serve` (BERTH_URL, BERTH_TOKEN with the admin scope)."""

import datetime
import os
import time
import uuid

import pytest

import berth_client
from berth_client import (
    AuthType,
    AuditApi,
    CreateRegistryRequest,
    CreateUpstreamProxyRequest,
    DockerSource,
    PackageType,
    RegistriesApi,
    UpdateRegistryRequest,
    UpdateUpstreamProxyRequest,
    UpstreamAuthInput,
    UpstreamProxiesApi,
)
from berth_client.exceptions import (
    ConflictException,
    NotFoundException,
    UnauthorizedException,
)


def client(token=None):
    config = berth_client.Configuration(
        host=os.environ["BERTH_URL"], access_token=token or os.environ["BERTH_TOKEN"]
    )
    return berth_client.ApiClient(config)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_registries_and_proxies_go_through_their_whole_life():
    with client() as api:
        proxies = UpstreamProxiesApi(api)
        registries = RegistriesApi(api)
        key = unique("hub")
        proxy = proxies.create_upstream_proxy(
            CreateUpstreamProxyRequest(
                key=key,
                package_type=PackageType.DOCKER,
                source=DockerSource.DOCKER_HUB,
                auth=UpstreamAuthInput(type=AuthType.USERNAME_PASSWORD, username="ci", password="s3cret"),
            )
        )
        assert proxy.auth.password_set is True
        assert proxy.auth.username == "ci"
        assert proxy.public is False
        made_public = proxies.update_upstream_proxy(key, UpdateUpstreamProxyRequest(public=True))
        assert made_public.public is True
        assert made_public.version == 2

        name = unique("team")
        created = registries.create_registry(
            CreateRegistryRequest(
                name=name, package_type=PackageType.DOCKER, labels=["prod"], upstreams=[key]
            )
        )
        assert created.upstreams == [key]
        assert created.version == 1

        listed = registries.list_registries(label="prod", search=name, package_type=PackageType.DOCKER)
        assert [r.name for r in listed.items] == [name]

        changed = registries.update_registry(
            name, UpdateRegistryRequest(description="team images"), if_match='"1"'
        )
        assert changed.description == "team images"
        assert registries.get_registry(name).version == 2

        moved = proxies.update_upstream_proxy(
            key, UpdateUpstreamProxyRequest(source=DockerSource.CUSTOM, url="https://registry.example.com")
        )
        assert moved.url == "https://registry.example.com/"

        with pytest.raises(ConflictException) as in_use:
            proxies.delete_upstream_proxy(key)
        assert "is used by registries" in in_use.value.body

        registries.update_registry(name, UpdateRegistryRequest(upstreams=[]))
        proxies.delete_upstream_proxy(key)
        registries.delete_registry(name)
        with pytest.raises(NotFoundException):
            registries.get_registry(name)


def test_a_duplicate_name_is_a_conflict_with_the_servers_message():
    with client() as api:
        registries = RegistriesApi(api)
        name = unique("dup")
        registries.create_registry(CreateRegistryRequest(name=name, package_type=PackageType.HELM))
        with pytest.raises(ConflictException) as conflict:
            registries.create_registry(CreateRegistryRequest(name=name, package_type=PackageType.HELM))
        assert conflict.value.status == 409
        assert f"registry {name} already exists" in conflict.value.body


def test_a_stale_if_match_is_refused_with_412():
    with client() as api:
        registries = RegistriesApi(api)
        name = unique("stale")
        registries.create_registry(CreateRegistryRequest(name=name, package_type=PackageType.DOCKER))
        registries.update_registry(name, UpdateRegistryRequest(labels=["a"]))
        with pytest.raises(berth_client.ApiException) as stale:
            registries.update_registry(name, UpdateRegistryRequest(labels=["b"]), if_match='"1"')
        assert stale.value.status == 412
        assert "PRECONDITION_FAILED" in stale.value.body


def test_history_and_as_of_read_the_past():
    with client() as api:
        registries = RegistriesApi(api)
        audit = AuditApi(api)
        name = unique("past")
        registries.create_registry(
            CreateRegistryRequest(name=name, package_type=PackageType.DOCKER, labels=["v1"])
        )
        time.sleep(0.05)
        between = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.05)
        registries.update_registry(name, UpdateRegistryRequest(labels=["v2"]))
        then = registries.get_registry(name, as_of=between)
        assert then.labels == ["v1"]
        history = audit.get_registry_history(name, limit=1)
        assert [item.event.type for item in history.items] == ["RegistryCreated"]
        rest = audit.get_registry_history(name, page_token=history.next_page_token)
        assert [item.event.type for item in rest.items] == ["RegistryLabelled"]
        # The generator names the `field` property `var_field` (it avoids pydantic's Field).
        assert rest.items[0].changes[0].var_field == "labels"


def test_a_bad_token_is_unauthorized():
    with client(token="not-a-token") as api:
        with pytest.raises(UnauthorizedException) as refused:
            RegistriesApi(api).list_registries()
        assert refused.value.status == 401
