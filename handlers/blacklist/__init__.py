"""DNS blocklist engine: a data catalog of DNSBLs, a fast multiplexing DNS client, per-run list
self-tests, and a streaming check whose every answer is listed, not listed, error or blocked."""

from handlers.blacklist.cache import AnswerCache
from handlers.blacklist.catalog import (
    CatalogError,
    CodeMeaning,
    DnsblList,
    load_catalog,
    parse_entry,
    select_lists,
)
from handlers.blacklist.classify import BLOCKED, ERROR, LISTED, NOT_LISTED, Verdict, classify
from handlers.blacklist.engine import (
    BlacklistEngine,
    BlacklistReport,
    BlacklistSetupError,
    CheckItem,
    EngineSettings,
    Failure,
    HealthReport,
    Listing,
    RangeSummary,
    TargetResult,
    parse_nameserver,
    run_check,
    system_nameservers,
)
from handlers.blacklist.health import PUBLIC_RESOLVERS, TEST_POINTS, ListHealth
from handlers.blacklist.mux import DnsMultiplexer, MuxStats, question_bytes
from handlers.blacklist.targets import TargetError, TargetSpec, parse_target, reverse_name

__all__ = [
    "BLOCKED",
    "ERROR",
    "LISTED",
    "NOT_LISTED",
    "PUBLIC_RESOLVERS",
    "TEST_POINTS",
    "AnswerCache",
    "BlacklistEngine",
    "BlacklistReport",
    "BlacklistSetupError",
    "CatalogError",
    "CheckItem",
    "CodeMeaning",
    "DnsMultiplexer",
    "DnsblList",
    "EngineSettings",
    "Failure",
    "HealthReport",
    "ListHealth",
    "Listing",
    "MuxStats",
    "RangeSummary",
    "TargetError",
    "TargetResult",
    "TargetSpec",
    "Verdict",
    "classify",
    "load_catalog",
    "parse_entry",
    "parse_nameserver",
    "parse_target",
    "question_bytes",
    "reverse_name",
    "run_check",
    "select_lists",
    "system_nameservers",
]
