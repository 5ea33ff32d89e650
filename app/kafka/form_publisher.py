"""The forms ingress's own publisher: a submitted form onto the form-submissions topic.

Apart from the results' publisher (`app.kafka.publisher`), so the web side (`app.web.forms`)
depends on neither the consumer nor its outcomes.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from app.events import CLOUDEVENTS_JSON
from app.settings import TopicSettings


class FormPublisher:
    """The forms ingress's own publisher, so the web side does not depend on the consumer."""

    def __init__(self, broker: KafkaBroker, topics: TopicSettings) -> None:
        self._forms = broker.publisher(
            topics.form_submissions,
            title="elements-sync form submissions",
            description="form.submitted CloudEvents written by the HTTP ingress, keyed by customer id.",
        )

    async def publish_form(self, customer_id: str, event: bytes) -> None:
        """Returns once Kafka acknowledged the event; raises when it cannot take it."""
        await self._forms.publish(
            event, key=customer_id.encode(), headers={"content-type": CLOUDEVENTS_JSON}
        )
