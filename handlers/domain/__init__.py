"""Sending-domain authentication and identity: SPF, DMARC, DKIM, PTR/FCrDNS, HELO, MX, MTA-STS
and TLS-RPT, each finding with why it matters and the record that fixes it.

Only the light modules are imported here (the config loader validates with them); the engine is
`handlers.domain.engine.run_domain_check`.
"""

from handlers.domain.inputs import (
    normalize_domain,
    normalize_ip,
    normalize_selector,
    parse_nameserver,
)
from handlers.domain.model import (
    COMMON_SELECTORS,
    STATUS_ORDER,
    DomainInputError,
    DomainInputs,
    DomainReport,
    DomainSettings,
    Finding,
    SendingIp,
    Status,
    worst,
)

__all__ = [
    "COMMON_SELECTORS",
    "STATUS_ORDER",
    "DomainInputError",
    "DomainInputs",
    "DomainReport",
    "DomainSettings",
    "Finding",
    "SendingIp",
    "Status",
    "normalize_domain",
    "normalize_ip",
    "normalize_selector",
    "parse_nameserver",
    "worst",
]
