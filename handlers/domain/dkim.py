"""DKIM: the public key at SELECTOR._domainkey.DOMAIN — present, type and size, testing, revoked.

The TXT record is fetched with our own resolver (so the configured nameservers and timeout apply);
its tags and key are read by dkimpy (`dkim.util.parse_tag_value`, `dkim.evaluate_pk`).
"""

from __future__ import annotations

import asyncio

from handlers.domain.lookup import Answer, AsyncDns
from handlers.domain.model import Finding

WHY_KEY = (
    "Gmail and Yahoo (2024) and Microsoft (2025) require DKIM from bulk senders and accept it in "
    "place of SPF from others; a key under 1024 bits is ignored by Gmail and most receivers, and "
    "1024-bit keys are being phased out in favour of 2048."
)
GUESSED_NOTE = (
    "No selector was given, so a short list of common selectors was tried; selectors are free "
    "text, so a miss here proves nothing. Name yours with --selector (or [domain] selectors)."
)


def _fix_key(name: str) -> str:
    return (
        f'{name}. IN TXT "v=DKIM1; k=rsa; p=<base64 public key of a 2048-bit RSA key>" '
        "(generate a new key pair with your signer, e.g. opendkim-genkey -b 2048, publish, then "
        "switch signing to it)"
    )


async def check_dkim(
    domain: str, selectors: list[str], guessed: bool, resolver: AsyncDns
) -> list[Finding]:
    answers = await asyncio.gather(
        *(resolver.query(f"{s}._domainkey.{domain}", "TXT") for s in selectors)
    )
    findings: list[Finding] = []
    for selector, answer in zip(selectors, answers, strict=True):
        finding = _key_finding(domain, selector, answer, guessed)
        if finding is not None:
            findings.append(finding)
    if not guessed:
        return findings
    errors = [f for f in findings if f.status == "error"]
    if errors:
        # one line for the guessed selectors that could not be asked, not one per guess
        findings = [f for f in findings if f.status != "error"]
        reason = next(a.error for a in answers if a.failed)
        findings.append(
            Finding(
                "dkim.key",
                "(common selectors)",
                "error",
                f"could not look up {len(errors)} of the common selectors "
                f"({', '.join(f.subject for f in errors)}): {reason}",
                "A lookup that failed says nothing about the key; run the check again.",
                detail={"selectors": [f.subject for f in errors], "guessed": True},
            )
        )
        return findings
    if not findings:
        findings.append(
            Finding(
                "dkim.key",
                "(common selectors)",
                "warn",
                "no key found at the common selectors "
                + ", ".join(selectors)
                + ". "
                + GUESSED_NOTE,
                WHY_KEY,
                "Check a message's DKIM-Signature header for s=SELECTOR and run "
                f"relaywatch domaincheck {domain} --selector SELECTOR",
                {"selectors": list(selectors), "guessed": True},
            )
        )
    return findings


def _key_finding(domain: str, selector: str, answer: Answer, guessed: bool) -> Finding | None:
    name = f"{selector}._domainkey.{domain}"
    detail: dict[str, object] = {"name": name, "guessed": guessed}
    if answer.failed:
        return Finding(
            "dkim.key",
            selector,
            "error",
            f"could not look up {name}: {answer.error}",
            "A lookup that failed says nothing about the key; run the check again.",
            detail=detail,
        )
    keys = [v for v in answer.values if "p=" in v.replace(" ", "")]
    if not keys:
        if guessed:
            return None
        return Finding(
            "dkim.key",
            selector,
            "fail",
            f"no DKIM key at {name}",
            WHY_KEY,
            _fix_key(name),
            detail,
        )
    if len(keys) > 1:
        return Finding(
            "dkim.key",
            selector,
            "fail",
            f"{name} has {len(keys)} key records; verifiers may pick either",
            WHY_KEY,
            "Keep exactly one TXT record at " + name,
            {**detail, "records": keys},
        )
    return _evaluate(name, selector, keys[0], detail)


def _evaluate(name: str, selector: str, record: str, detail: dict[str, object]) -> Finding:
    import dkim
    from dkim.util import InvalidTagValueList, parse_tag_value

    detail["record"] = record
    try:
        tags = parse_tag_value(record.encode("utf-8", "replace"))
    except InvalidTagValueList as exc:
        return Finding(
            "dkim.key",
            selector,
            "fail",
            f"the key record at {name} does not parse: {exc}",
            WHY_KEY,
            _fix_key(name),
            detail,
        )
    flags = tags.get(b"t", b"").decode("ascii", "replace").replace(" ", "").split(":")
    testing = "y" in flags
    detail["testing"] = testing
    if not tags.get(b"p", b"").strip():
        return Finding(
            "dkim.key",
            selector,
            "fail",
            f"the key at {name} is revoked (empty p=): signatures with selector {selector} fail",
            WHY_KEY,
            f"Stop signing with selector {selector}, or publish its current key: " + _fix_key(name),
            detail,
        )
    key_type = tags.get(b"k", b"rsa").decode("ascii", "replace").lower()
    try:
        _, bits, ktag, _ = dkim.evaluate_pk(name, record.encode("utf-8", "replace"))
    except dkim.NaClNotFoundError:
        # ed25519 keys are checked for presence only when PyNaCl is absent; their size is fixed
        bits, ktag = 256, b"ed25519"
    except dkim.KeyFormatError as exc:
        return Finding(
            "dkim.key",
            selector,
            "fail",
            f"the key at {name} is unusable: {exc}",
            WHY_KEY,
            _fix_key(name),
            detail,
        )
    key_type = (ktag or key_type.encode()).decode("ascii", "replace")
    detail.update({"type": key_type, "bits": bits})
    testing_note = " (t=y: testing mode, receivers may treat signatures as unsigned)"
    if key_type == "ed25519":
        status, summary, fix = "pass", f"ed25519 key at {name}", ""
    elif bits < 1024:
        status, summary = "fail", f"RSA key of {bits} bits at {name}: too short, ignored"
        fix = _fix_key(name)
    elif bits < 2048:
        status, summary = "warn", f"RSA key of {bits} bits at {name}: weak, move to 2048"
        fix = _fix_key(name)
    else:
        status, summary, fix = "pass", f"RSA key of {bits} bits at {name}", ""
    if testing:
        summary += testing_note
        if status == "pass":
            status = "warn"
        fix = fix or f"Remove t=y from the record at {name} once signing is verified."
    return Finding("dkim.key", selector, status, summary, WHY_KEY, fix, detail)  # type: ignore[arg-type]
