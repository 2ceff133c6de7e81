"""Sending-domain authentication and identity: SPF, DMARC, DKIM, PTR/FCrDNS, HELO, MX, MTA-STS
and TLS-RPT, each finding with why it matters and the record that fixes it."""

from handlers.domain.engine import (
    normalize_domain,
    normalize_ip,
    normalize_selector,
    run_domain_check,
)
from handlers.domain.lookup import parse_nameserver
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
    "run_domain_check",
    "worst",
]
