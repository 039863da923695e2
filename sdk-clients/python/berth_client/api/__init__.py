# flake8: noqa

# import apis into api package
from berth_client.api.audit_api import AuditApi
from berth_client.api.registries_api import RegistriesApi
from berth_client.api.upstream_proxies_api import UpstreamProxiesApi

