"""Secure messaging with the pharmacy (contract v1.1, MSSanté): post a message in a
conversation, and the pharmacy's and the patient's conversation lists (from the projections:
they may lag the log by up to 1 s, like the other lists)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from adapters.http.call import Call
from adapters.http.lists import Lists
from adapters.http.problems import Problem
from adapters.http.routes import IdempotencyKey
from adapters.http.schemas import Body, strict_body
from adapters.readmodels.queries import CursorKey
from domain.conversation_state import Conversation, Message, message_of
from domain.events import Party
from domain.views import display_number

# One line, no control characters: a subject becomes an e-mail header.
Subject = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"),
]
MessageText = Annotated[str, msgspec.Meta(max_length=10_000)]


class MessageBody(Body, frozen=True, kw_only=True):
    subject: Subject
    body: MessageText = ""


class MessageView(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    sender: Party = msgspec.field(name="from")
    rpps: str | None
    subject: str
    body: str
    at: datetime


class ConversationView(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    prescription_id: str
    finess: str
    status: Literal["open", "closed"]
    opened_at: datetime
    last_activity_at: datetime
    messages: list[MessageView]


class ConversationPage(msgspec.Struct, frozen=True):
    items: list[ConversationView]
    next_cursor: str | None


class PostedMessage(MessageView, frozen=True, kw_only=True):
    """The message as recorded, and where its conversation stands after it ("FIN" closes)."""

    conversation_id: str
    conversation_status: Literal["open", "closed"]
    # False when the recipient has no MSSanté mailbox (a pharmacy without a BAL ORG): nothing
    # is e-mailed to it, and the patient receives a notice saying so.
    recipient_has_mailbox: bool


class ConversationsController(Controller):
    path = "/v1"
    tags = ["messaging"]  # noqa: RUF012

    @post(
        "/conversations/{conversation_id:str}/messages",
        status_code=201,
        summary='Post a message in a conversation ("FIN" from the pharmacy closes it)',
        description="For the conversation's patient and the pharmacists of its pharmacy; "
        "anyone else gets 404. A pharmacist's subject `FIN` (any case, surrounding spaces "
        "ignored) closes it; later messages get 409 `conversation_closed`.",
        responses={
            201: ResponseSpec(data_container=PostedMessage, description="Posted"),
            404: ResponseSpec(
                data_container=Problem, description="not_found: no such conversation for you"
            ),
            409: ResponseSpec(data_container=Problem, description="conversation_closed"),
        },
        dependencies={"payload": strict_body(MessageBody)},
    )
    async def post_message(
        self,
        conversation_id: FromPath[str],
        payload: NamedDependency[MessageBody],
        call: NamedDependency[Call],
        idempotency_key: IdempotencyKey = None,
    ) -> PostedMessage:
        actor, conversations = call.actor, call.conversations
        posted = await conversations.post(
            actor, conversation_id, payload.subject, payload.body, idempotency_key
        )
        event = posted.message
        return PostedMessage(
            **msgspec.structs.asdict(message_of(event)),
            conversation_id=event.conversation_id,
            conversation_status=posted.conversation.status,
            recipient_has_mailbox=all(mail.kind == "message" for mail in event.mails),
        )

    @get(
        "/pharmacies/me/conversations",
        summary="The pharmacy's conversations, newest activity first",
    )
    async def pharmacy_conversations(self, lists: NamedDependency[Lists]) -> ConversationPage:
        finess = lists.own("pharmacy_conversations", lists.actor.finess)
        return await _page(lists, "finess", finess)

    @get("/patients/me/conversations", summary="The patient's conversations, newest activity first")
    async def patient_conversations(self, lists: NamedDependency[Lists]) -> ConversationPage:
        ins = lists.own("patient_conversations", lists.actor.ins)
        return await _page(lists, "patient_ins", ins)


async def _page(lists: Lists, by: Literal["finess", "patient_ins"], own: str) -> ConversationPage:
    page = lists.page
    found = await lists.read_models.store.conversations_page(
        by, own, page.after(CursorKey), page.fetch
    )
    return ConversationPage(
        items=[conversation_view(c) for c in page.items(found)],
        next_cursor=page.next_cursor(
            found, lambda c: CursorKey(c.last_activity_at, c.conversation_id)
        ),
    )


def conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(
        conversation_id=conversation.conversation_id,
        prescription_id=display_number(conversation.prescription_id),
        finess=conversation.finess,
        status=conversation.status,
        opened_at=conversation.opened_at,
        last_activity_at=conversation.last_activity_at,
        messages=[_message_view(m) for m in conversation.messages],
    )


def _message_view(message: Message) -> MessageView:
    return MessageView(**msgspec.structs.asdict(message))
