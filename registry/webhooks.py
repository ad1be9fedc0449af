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
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
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
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(RESPONSE_SNIPPET)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        snippet = exc.read(RESPONSE_SNIPPET).decode(errors="replace")
        return exc.code, f"HTTP {exc.code}: {snippet}".strip()
    except (OSError, ValueError) as exc:  # refused, timed out, DNS, bad URL
        return None, f"{type(exc).__name__}: {exc}"


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
