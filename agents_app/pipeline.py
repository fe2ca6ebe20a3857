"""The chat turn: ``handle_turn(tenant, conversation, message) -> TurnReply``.

load context → guard the input → analyse → enhance → plan → execute → guard the output →
compose → trace. The caller (``conversations.services.turn_run``) persists and pushes the
reply; a raise here becomes the polite failure notice there, never silence.

Execution: when an LLM provider is configured and the tenant is within its monthly budget,
CrewAI specialists answer; when none is configured, the budget is spent, or every provider
fails, the offline brain answers through the same plan and tools. Multi-turn flows
(booking, stock alerts) are explicit state machines over the versioned conversation state,
so they survive a restart of any process between two messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from agents_app import guardrails
from agents_app.language import reply_language
from agents_app.router import COMPANION_INTENTS, Analysis, analyze, tenant_today
from agents_app.tools import ToolBox
from agents_app.tracing import Tracer

logger = logging.getLogger(__name__)

HISTORY_MESSAGES = 8
# Intents whose answer may come from documents (the shop's policies, the marketing library).
KNOWLEDGE_INTENTS = {"other", "complaint", "product_inquiry", "seo", "campaign_strategy", "content_creation"}
OFFLINE_KNOWLEDGE_INTENTS = {"other", "complaint"}
# A second intent this close to the first becomes a secondary task (companion asks often span two).
SECONDARY_MARGIN = 0.02
SPECIALIST_BY_INTENT = {
    "analytics_report": "analytics",
    "content_creation": "content",
    "campaign_strategy": "campaign",
    "seo": "seo",
}
FLOW_INTENTS = ("booking", "stock_alert")


@dataclass(frozen=True)
class TurnReply:
    content: str
    language: str
    metadata: dict[str, Any] = field(default_factory=dict)


def make_plan(analysis: Analysis, companion: bool, flow: str | None = None) -> list[dict[str, Any]]:
    """Primary and secondary tasks with their dependencies.

    A campaign plan depends on the analytics (it is grounded in the figures); content
    written alongside a plan depends on the plan. The inbox has one task: the conversation
    agent's, plus the extraction agent's lead qualification for customers.
    """
    if not companion:
        primary = flow or analysis.intent
        return [
            {"id": "reply", "specialist": "conversation", "intent": primary, "depends_on": []},
            {"id": "qualify", "specialist": "extraction", "intent": "lead_qualification", "depends_on": []},
        ]
    intents = [analysis.intent]
    ranked = sorted(analysis.scores.items(), key=lambda pair: -pair[1])
    if len(ranked) > 1:
        (first, first_score), (second, second_score) = ranked[0], ranked[1]
        if (
            first == analysis.intent
            and second in COMPANION_INTENTS
            and first in COMPANION_INTENTS
            and first_score - second_score <= SECONDARY_MARGIN
        ):
            intents.append(second)
    tasks: list[dict[str, Any]] = []
    if "campaign_strategy" in intents and "analytics_report" not in intents:
        tasks.append(
            {"id": "figures", "specialist": "analytics", "intent": "kpi_summary", "depends_on": [], "internal": True}
        )
    for intent in intents:
        specialist = SPECIALIST_BY_INTENT.get(intent, "companion")
        depends_on = [task["id"] for task in tasks if task["specialist"] in ("analytics", "campaign")]
        tasks.append({"id": intent, "specialist": specialist, "intent": intent, "depends_on": depends_on})
    return tasks


def _history(tenant: Any, conversation: Any, message: Any) -> list[dict[str, Any]]:
    from conversations.models import Message

    rows = (
        Message.objects.for_tenant(tenant)
        .filter(conversation=conversation, pk__lt=message.pk, role__in=["user", "assistant", "agent"])
        .order_by("-pk")
        .values("role", "content")[:HISTORY_MESSAGES]
    )
    return list(reversed(list(rows)))


def _state_read(tenant: Any, conversation: Any) -> Any:
    """The conversation's state, or an empty one at version 0 when none was written yet (it is
    created by the first write, ``conversation_state_update``): reading costs no insert."""
    from conversations.models import ConversationState

    found = ConversationState.objects.for_tenant(tenant).filter(conversation=conversation).first()
    return (
        found if found is not None else ConversationState(tenant=tenant, conversation=conversation, data={}, version=0)
    )


def _month_spend(tenant: Any) -> Decimal:
    from django.db.models import Sum

    from agents_app.models import AgentRun

    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = AgentRun.objects.for_tenant(tenant).filter(started_at__gte=start).aggregate(total=Sum("cost_usd"))
    return total["total"] or Decimal("0")


def budget_allows_llm(tenant: Any) -> bool:
    """False once the tenant's monthly LLM budget is spent (staff are told once per month)."""
    from agents_app.models import AISettings

    ai = AISettings.objects.for_tenant(tenant).first()
    if ai is None or ai.monthly_budget_usd is None:
        return True
    if _month_spend(tenant) < ai.monthly_budget_usd:
        return True
    month = timezone.now().strftime("%Y-%m")
    claimed = (
        AISettings.objects.for_tenant(tenant)
        .filter(pk=ai.pk)
        .exclude(budget_exhausted_month=month)
        .update(budget_exhausted_month=month)
    )
    if claimed:
        _tell_staff_budget_spent(tenant, ai.monthly_budget_usd)
    return False


def _tell_staff_budget_spent(tenant: Any, budget: Decimal) -> None:
    try:
        from conversations.services import companion_notify
    except ImportError:  # the companion notification is not available in this deployment
        logger.warning("tenant %s spent its LLM budget of %s USD", tenant.pk, budget)
        return
    language = tenant.default_language or "ar"
    content = (
        f"تنبيه: وصلت ميزانية الذكاء الاصطناعي الشهرية ({budget} دولار). حتى نهاية الشهر يجيب المساعد دون اتصال."
        if language == "ar"
        else f"Heads-up: the monthly AI budget (USD {budget}) is spent. "
        "Until the month ends, the offline brain answers."
    )
    companion_notify(tenant, content, {"kind": "llm_budget_spent", "budget_usd": str(budget)})


def llm_enabled() -> bool:
    mode = getattr(settings, "MORVO_BRAIN", "auto")
    if mode == "offline":
        return False
    try:
        from agents_app import providers
    except ImportError:
        return False
    return bool(providers.configured())


def handle_turn(tenant: Any, conversation: Any, message: Any) -> TurnReply:
    from conversations.services import StateConflict, conversation_state_update

    text = message.content or ""
    companion = conversation.kind == "companion"
    language = reply_language(text, default=tenant.default_language or "ar")
    tracer = Tracer(tenant, kind="turn", conversation=conversation, message=message)
    toolbox = ToolBox(tenant, conversation=conversation, message=message, tracer=tracer)
    today = tenant_today(tenant)

    use_llm = llm_enabled() and budget_allows_llm(tenant)
    with tracer.stage("load_context") as stage:
        from agents_app.prompts import active_prompt

        system_prompt, prompt_row = active_prompt(tenant, "companion" if companion else "inbox", language)
        state_row = _state_read(tenant, conversation)
        state = dict(state_row.data or {})
        # The offline brain works from the message, the state and the data; only a model reads history.
        history = _history(tenant, conversation, message) if use_llm else []
        stage.detail = {"prompt_version": getattr(prompt_row, "version", 0), "history": len(history)}

    verdict = guardrails.check_input(text, companion=companion)
    if not verdict.allowed:
        tracer.step("guard", "input", detail={"category": verdict.category, "reason": verdict.reason})
        tracer.save(status="succeeded", intent="", language=language, brain="guardrail")
        return TurnReply(
            guardrails.safe_reply(verdict, language),
            language,
            {"guard": verdict.category, "suggestions": []},
        )

    with tracer.stage("analyse") as stage:
        analysis = analyze(text, tenant, today=today)
        if use_llm:
            from agents_app.router.llm import analyze_with_llm

            analysis = analyze_with_llm(text, tenant, offline=analysis, tracer=tracer)
        analysis = _clicked_suggestion(text, analysis)
        analysis = restrict_to_audience(analysis, companion)
        stage.detail = {"intent": analysis.intent, "confidence": analysis.confidence, "source": analysis.source}
    _record_priority(tenant, conversation, analysis)

    flow = state.get("flow") if state.get("flow") in FLOW_INTENTS else None
    if analysis.intent in ("human_handoff", "complaint"):
        flow = None
    knowledge: list[dict[str, Any]] = []
    with tracer.stage("enhance") as stage:
        wants_documents = analysis.intent != "product_inquiry" or not analysis.entities.get("products")
        # The offline brain quotes documents only in these answers; the specialists use them everywhere.
        knowledge_intents = KNOWLEDGE_INTENTS if use_llm else OFFLINE_KNOWLEDGE_INTENTS
        if analysis.intent in knowledge_intents and not flow and wants_documents:
            knowledge = toolbox.call("search_knowledge", query=text, k=3, own_only=not companion).get("results", [])
            threshold = getattr(settings, "MORVO_KNOWLEDGE_ANSWER_THRESHOLD", 0.0)
            knowledge = [hit for hit in knowledge if hit["score"] >= threshold]
        stage.detail = {"knowledge": len(knowledge)}

    plan = make_plan(analysis, companion, flow)
    brain = "offline"
    status = "succeeded"
    error = ""
    reply = None
    if use_llm and not flow and analysis.intent not in FLOW_INTENTS:
        try:
            from agents_app.crew.run import crew_execute

            answer = crew_execute(
                toolbox=toolbox,
                tracer=tracer,
                system_prompt=system_prompt,
                language=language,
                intent=analysis.intent,
                plan=[task for task in plan if task["specialist"] != "extraction"],
                user_message=guardrails.quote_user_content(text),
                history=history,
                context={
                    "conversation_kind": "companion" if companion else "customer",
                    "analysis": analysis.as_dict(),
                    "knowledge": knowledge,
                    "state": state,
                },
            )
            from agents_app.offline_brain import Reply

            reply = Reply(answer.content, dict(answer.metadata))
            brain = "crewai"
        except Exception as exc:
            logger.warning("LLM path failed for tenant %s, answering offline: %s", tenant.pk, exc)
            status, error = "fallback", f"{type(exc).__name__}: {exc}"
    if reply is not None and not companion and analysis.intent in ("complaint", "human_handoff"):
        # Handing over to people never depends on a model choosing to call the tool.
        toolbox.call(
            "escalate_to_human",
            reason=text[:400],
            priority="urgent" if analysis.priority == "urgent" else "high",
        )
        reply.metadata["escalated"] = True
    if reply is None:
        reply = _offline_execute(tenant, toolbox, tracer, analysis, plan, language, text, state, knowledge, today)

    allowed_contacts = _contact_details(tenant, conversation)
    output_verdict = guardrails.check_output(
        reply.content, system_prompt=system_prompt, allowed_contacts=allowed_contacts
    )
    if not output_verdict.allowed:
        tracer.step("guard", "output", detail={"category": output_verdict.category, "reason": output_verdict.reason})
        reply.content = guardrails.safe_reply(output_verdict, language)
        reply.metadata = {"guard": output_verdict.category}

    if reply.state is not None and reply.state != state:
        try:
            conversation_state_update(tenant, conversation, expected_version=state_row.version, data=reply.state)
        except StateConflict:
            # Another worker moved the flow on meanwhile; its state wins and this answer stands.
            tracer.step("stage", "state_conflict", error="state changed during the turn")

    if not companion and (brain == "crewai" or _lead_signal(text, analysis)):
        _qualify(tenant, conversation, message, toolbox, tracer, analysis, language, use_llm and brain == "crewai")

    metadata = _compose_metadata(reply.metadata, analysis, brain, companion)
    tracer.save(
        status=status,
        error=error,
        intent=analysis.intent,
        language=language,
        brain=brain,
        plan=plan,
        analysis=analysis.as_dict(),
    )
    return TurnReply(content=reply.content, language=language, metadata=metadata)


def _offline_execute(
    tenant: Any,
    toolbox: ToolBox,
    tracer: Tracer,
    analysis: Analysis,
    plan: list[dict[str, Any]],
    language: str,
    text: str,
    state: dict[str, Any],
    knowledge: list[dict[str, Any]],
    today: Any,
) -> Any:
    from agents_app.offline_brain import OfflineBrain, Reply

    brain = OfflineBrain(tenant, toolbox, companion=_is_companion(plan), today=today)
    replies = []
    with tracer.stage("execute_offline") as stage:
        for task in plan:
            if task.get("internal") or task["specialist"] == "extraction":
                continue
            if task["specialist"] == "conversation":
                replies.append(brain.answer(analysis, language, text, state, knowledge))
            else:
                task_analysis = (
                    analysis if task["intent"] == analysis.intent else _with_intent(analysis, task["intent"])
                )
                replies.append(brain.answer(task_analysis, language, text, state, knowledge))
        stage.detail = {"tasks": [task["id"] for task in plan]}
    if not replies:
        return Reply("", {})
    merged = replies[0]
    for extra in replies[1:]:
        merged.content += "\n\n" + extra.content
        for key in ("attachments", "kpis", "sources"):
            if extra.metadata.get(key):
                merged.metadata[key] = [*merged.metadata.get(key, []), *extra.metadata[key]]
        merged.metadata["suggestions"] = (
            merged.metadata.get("suggestions", []) + extra.metadata.get("suggestions", [])
        )[:4]
    return merged


def _qualify(
    tenant: Any,
    conversation: Any,
    message: Any,
    toolbox: ToolBox,
    tracer: Tracer,
    analysis: Analysis,
    language: str,
    with_model: bool,
) -> None:
    """The extraction agent's lead qualification of the customer so far (a failure here never
    fails the turn: the customer has their answer either way)."""
    from agents_app.qualification import qualification_store, qualify_offline
    from conversations.models import Message

    with tracer.stage("qualify") as stage:
        try:
            from agents_app.models import AgentRun

            earlier_texts = (
                Message.objects.for_tenant(tenant)
                .filter(conversation=conversation, role=Message.Role.USER, pk__lt=message.pk)
                .order_by("-pk")
                .values_list("content", flat=True)[:9]
            )
            texts = [*reversed(list(earlier_texts)), message.content]
            # Earlier turns kept the router's reading of their message on their run.
            readings = (
                AgentRun.objects.for_tenant(tenant)
                .filter(conversation=conversation, message__lt=message.pk, kind="turn")
                .exclude(analysis={})
                .order_by("-message")
                .values_list("analysis", flat=True)[:9]
            )
            earlier = [Analysis(**reading) for reading in reversed(list(readings))]
            lead = None
            source = "offline"
            if with_model:
                try:
                    from agents_app.crew.run import extraction_run

                    lead = extraction_run(
                        toolbox=toolbox, tracer=tracer, transcript="\n".join(texts), language=language
                    )
                    source = "extraction"
                except Exception as exc:
                    stage.detail["model_error"] = f"{type(exc).__name__}: {exc}"[:200]
            if lead is None:
                lead = qualify_offline(texts, [*earlier, analysis])
            qualification = qualification_store(tenant, conversation, lead, source)
            stage.detail.update({"source": source, "score": getattr(qualification, "score", None)})
        except Exception as exc:
            logger.warning("lead qualification failed for conversation %s: %s", conversation.pk, exc)
            stage.detail["error"] = f"{type(exc).__name__}: {exc}"[:200]


def _lead_signal(text: str, analysis: Analysis) -> bool:
    from agents_app.qualification import lead_signal

    return lead_signal(text, analysis)


def _is_companion(plan: list[dict[str, Any]]) -> bool:
    return not any(task["specialist"] == "conversation" for task in plan)


CUSTOMER_INTENTS = ("product_inquiry", "stock_alert", "booking", "complaint", "human_handoff", "greeting", "other")
STAFF_INTENTS = (*COMPANION_INTENTS, "product_inquiry", "greeting", "other")


def _clicked_suggestion(text: str, analysis: Analysis) -> Analysis:
    """A message that is one of Morvo's own suggestion chips asks for the chip's intent."""
    from agents_app.offline_brain import CHIP_INTENTS
    from agents_app.router import priority_for
    from morvo.text import normalize_arabic

    intent = CHIP_INTENTS.get(normalize_arabic(text))
    if intent is None or intent == analysis.intent:
        return analysis
    return _with_intent(
        analysis, intent, priority=priority_for(intent, analysis.sentiment), confidence=1.0, source="suggestion"
    )


def restrict_to_audience(analysis: Analysis, companion: bool) -> Analysis:
    """Customers never get the companion's answers (sales figures are the business's own) and
    staff never start a customer flow: the best intent allowed for the audience wins."""
    allowed = STAFF_INTENTS if companion else CUSTOMER_INTENTS
    if analysis.intent in allowed:
        return analysis
    candidates = [(score, intent) for intent, score in analysis.scores.items() if intent in allowed]
    intent = max(candidates)[1] if candidates else "other"
    from agents_app.router import priority_for

    return _with_intent(analysis, intent, priority=priority_for(intent, analysis.sentiment))


def _with_intent(analysis: Analysis, intent: str, **changes: Any) -> Analysis:
    from dataclasses import replace

    return replace(analysis, intent=intent, **changes)


def _record_priority(tenant: Any, conversation: Any, analysis: Analysis) -> None:
    """A customer conversation's priority rises with what the router reads (never falls by itself)."""
    if conversation.kind != "customer":
        return
    from conversations.services import PRIORITY_ORDER, conversation_update

    if PRIORITY_ORDER.index(analysis.priority) > PRIORITY_ORDER.index(conversation.priority):
        conversation_update(tenant, conversation.pk, priority=analysis.priority)


def _contact_details(tenant: Any, conversation: Any) -> tuple[str, ...]:
    contact = getattr(conversation, "contact", None) if conversation.contact_id else None
    if contact is None:
        return ()
    return tuple(value for value in (contact.email, contact.phone) if value)


def _compose_metadata(raw: dict[str, Any], analysis: Analysis, brain: str, companion: bool) -> dict[str, Any]:
    metadata = {key: value for key, value in raw.items() if value not in (None, [], {})}
    metadata.setdefault("suggestions", [])
    metadata["intent"] = analysis.intent
    metadata["brain"] = brain
    metadata["analysis"] = {
        "intent": analysis.intent,
        "priority": analysis.priority,
        "sentiment": analysis.sentiment,
        "confidence": analysis.confidence,
    }
    if not companion:
        metadata.pop("kpis", None)
    return metadata
