"""Webhook signing and delivery.

Signature scheme (what receivers check)
---------------------------------------
Every delivery is a ``POST`` with a JSON body and these headers:

* ``X-Mlplatform-Event``: the event type, e.g. ``deployment.changed``;
* ``X-Mlplatform-Delivery``: the event id (a UUID, the same for every retry, so receivers can de-duplicate);
* ``X-Mlplatform-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``, where the HMAC is computed with the
  webhook's secret over the bytes ``f"{t}.".encode() + body``.

A receiver recomputes the HMAC over the raw body, compares in constant time and refuses timestamps older
than a few minutes (replay protection). ``verify_signature`` below uses only the standard library: copy it.

Delivery
--------
Services call ``enqueue_event`` inside their transaction: it writes one pending ``WebhookDelivery`` per
subscribed webhook. After commit the ids go to a small thread pool in the server process, so a slow or
failing receiver never delays the API. A failed attempt is recorded and the next one is written as a new
pending row, due after an exponential back-off (``WEBHOOK_RETRY_BASE_SECONDS * 2**(attempt-1)``), and is
scheduled in-process; ``manage.py deliver_webhooks`` sends whatever is due (e.g. after a restart).

Redirects are never followed: urllib would turn a 301/302/303 on a POST into a GET without the body. A 3xx
answer is a failed attempt like a 5xx (recorded with its status code, retried with back-off).

Address guard
-------------
A webhook URL whose host resolves to a link-local address (169.254.0.0/16, fe80::/10: cloud metadata
endpoints) is always refused, when the webhook is saved (``check_url_host``) and again when each attempt
connects (DNS can change): the connection goes to the very address that was checked. Loopback and private
addresses are allowed (self-hosted receivers are often internal) unless ``WEBHOOK_ALLOW_PRIVATE_HOSTS`` is
off, in which case only public (globally routable) addresses are.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from mlplatform.nonfinite import json_safe
from registry.models import DeliveryStatus, Webhook, WebhookDelivery

logger = logging.getLogger("mlplatform.webhooks")

SIGNATURE_HEADER = "X-Mlplatform-Signature"
EVENT_HEADER = "X-Mlplatform-Event"
DELIVERY_HEADER = "X-Mlplatform-Delivery"
USER_AGENT = "mlplatform-webhooks/1"
RESPONSE_SNIPPET = 500


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``: ``t=<unix>,v1=<hex hmac-sha256>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """Receiver side: True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        received = parts["v1"]
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential back-off."""
    return float(_setting("WEBHOOK_RETRY_BASE_SECONDS", 10)) * (2 ** (attempt - 1))


def enqueue_event(*, team_id: int, event_type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Write a pending delivery for each active webhook of the team subscribed to ``event_type``."""
    hooks = [
        hook
        for hook in Webhook.objects.filter(team_id=team_id, is_active=True).only("id", "event_types")
        if event_type in hook.event_types
    ]
    if not hooks:
        return []
    return _enqueue(hooks, event_type, data)


def enqueue_test(webhook: Webhook) -> WebhookDelivery:
    """Write a pending ``webhook.test`` delivery to one webhook, subscribed or not."""
    return _enqueue([webhook], "webhook.test", {"message": "Test delivery from mlplatform.", "webhook": webhook.pk})[0]


def _enqueue(hooks: Iterable[Webhook], event_type: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    event_id = uuid.uuid4()
    payload = json_safe(
        {"id": str(event_id), "type": event_type, "created_at": timezone.now().isoformat(), "data": data}
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=hook, event_id=event_id, event_type=event_type, payload=payload) for hook in hooks]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: submit(ids))
    return deliveries


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            workers = int(_setting("WEBHOOK_WORKERS", 4))
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        return _executor


def submit(delivery_ids: Iterable[int]) -> None:
    """Hand deliveries to the background pool; returns at once."""
    pool = _pool()
    for delivery_id in delivery_ids:
        pool.submit(_deliver_in_worker, delivery_id)


def _deliver_in_worker(delivery_id: int) -> None:
    close_old_connections()
    try:
        deliver(delivery_id)
    except Exception:  # a bug here must not kill the pool thread; the row stays for deliver_webhooks
        logger.exception("webhook delivery crashed", extra={"delivery_id": delivery_id})
    finally:
        close_old_connections()


def _schedule_retry(delivery_id: int, delay: float) -> None:
    timer = threading.Timer(delay, submit, args=([delivery_id],))
    timer.daemon = True
    timer.start()


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Mark a due pending delivery as sending; None when another worker has it or it is not due."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, scheduled_at__lte=now
    ).update(status=DeliveryStatus.SENDING, started_at=now)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)


class BlockedAddress(OSError):
    """The webhook host resolves to an address deliveries may not go to (link-local, or private when refused)."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _blocked_reason(address: IPAddress) -> str | None:
    """Why deliveries may not go to ``address``, or None when they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return "a link-local address (cloud metadata range)"
    if not _setting("WEBHOOK_ALLOW_PRIVATE_HOSTS", True) and (not address.is_global or address.is_multicast):
        return "a loopback, private or reserved address (WEBHOOK_ALLOW_PRIVATE_HOSTS is off)"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal IP resolves to itself); raises OSError when none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))


def checked_addresses(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` and refuse it (BlockedAddress) when any of its addresses is blocked."""
    addresses = _resolve(host, port)
    for address in addresses:
        reason = _blocked_reason(address)
        if reason is not None:
            raise BlockedAddress(f"webhook host {host!r} resolves to {address}, {reason}; deliveries refused")
    return addresses


def check_url_host(url: str) -> str | None:
    """When a webhook is saved: why its host is refused, or None. A host that does not resolve (yet) passes;
    each delivery checks again anyway."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        checked_addresses(parts.hostname or "", port)
    except BlockedAddress as exc:
        return str(exc)
    except (OSError, ValueError, UnicodeError):
        return None
    return None


_target_host: contextvars.ContextVar[str | None] = contextvars.ContextVar("webhook_target_host", default=None)


def _guarded_create_connection(
    address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT, source_address: Any = None
) -> socket.socket:
    """``socket.create_connection`` that connects only to addresses it has checked (no DNS rebinding gap)."""
    host, port = address
    if host.lower() != _target_host.get():  # an HTTP proxy from the environment: the target was checked in _post
        return socket.create_connection(address, timeout, source_address)
    error: OSError | None = None
    for ip in checked_addresses(host, port):
        try:
            return socket.create_connection((str(ip), port), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error or OSError(f"cannot connect to {host!r}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_create_connection


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    """TLS still verifies the certificate against the URL's host name (``server_hostname``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_create_connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the 3xx answer surfaces as an HTTPError, i.e. a failed attempt."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects, _GuardedHTTPHandler, _GuardedHTTPSHandler)


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the signed payload; returns (status code or None, error text)."""
    body = json.dumps(delivery.payload, separators=(",", ":"), allow_nan=False).encode()
    request = urllib.request.Request(  # noqa: S310 (http/https enforced when the webhook is saved)
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: delivery.event_type,
            DELIVERY_HEADER: str(delivery.event_id),
            SIGNATURE_HEADER: sign(delivery.webhook.secret, body),
        },
    )
    timeout = float(_setting("WEBHOOK_TIMEOUT_SECONDS", 5))
    refused = check_url_host(delivery.webhook.url)
    if refused is not None:
        return None, f"BlockedAddress: {refused}"
    token = _target_host.set(urllib.parse.urlsplit(delivery.webhook.url).hostname)
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(RESPONSE_SNIPPET)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        snippet = exc.read(RESPONSE_SNIPPET).decode(errors="replace")
        if 300 <= exc.code < 400:
            location = exc.headers.get("Location", "") if exc.headers else ""
            return exc.code, f"HTTP {exc.code}: redirects are not followed (Location: {location or '-'})"
        return exc.code, f"HTTP {exc.code}: {snippet}".strip()
    except (OSError, ValueError) as exc:  # refused, timed out, DNS, bad URL, blocked address
        if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BlockedAddress):
            exc = exc.reason
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        _target_host.reset(token)


def deliver(delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt of a due pending delivery, record it, and schedule the next attempt on failure."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    started = time.monotonic()
    status_code, error = _post(delivery)
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    with transaction.atomic():
        delivery.status = DeliveryStatus.SUCCEEDED if succeeded else DeliveryStatus.FAILED
        delivery.status_code = status_code
        delivery.error = error
        delivery.duration_ms = duration_ms
        delivery.finished_at = timezone.now()
        delivery.save(update_fields=["status", "status_code", "error", "duration_ms", "finished_at"])
        max_attempts = int(_setting("WEBHOOK_MAX_ATTEMPTS", 6))
        if not succeeded and delivery.attempt < max_attempts and delivery.webhook.is_active:
            delay = retry_delay(delivery.attempt)
            retry = WebhookDelivery.objects.create(
                webhook=delivery.webhook,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                payload=delivery.payload,
                attempt=delivery.attempt + 1,
                scheduled_at=timezone.now() + timedelta(seconds=delay),
            )
            transaction.on_commit(lambda: _schedule_retry(retry.pk, delay))
    if not succeeded:
        logger.warning(
            "webhook delivery failed",
            extra={"delivery_id": delivery.pk, "attempt": delivery.attempt, "status_code": status_code},
        )
    return delivery


def deliver_due(*, stale_after_seconds: int = 300) -> list[WebhookDelivery]:
    """Deliver every due pending delivery now (and re-queue ones stuck in sending by a dead process)."""
    now = timezone.now()
    WebhookDelivery.objects.filter(
        status=DeliveryStatus.SENDING, started_at__lt=now - timedelta(seconds=stale_after_seconds)
    ).update(status=DeliveryStatus.PENDING)
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, scheduled_at__lte=now).order_by("id")
    done = []
    for delivery_id in due.values_list("id", flat=True):
        delivery = deliver(delivery_id)
        if delivery is not None:
            done.append(delivery)
    return done
