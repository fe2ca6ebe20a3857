"""The tenant's ToolBox as CrewAI tools.

Each ToolBox method becomes one ``BaseTool`` with a pydantic argument schema read from the
method's signature. The tool calls ``toolbox.call(name, **arguments)``, so the tenant (and the
conversation) stay bound by the box: the model chooses arguments, never whose data it reads.
Results go back to the model as JSON text; a failure the model can fix is ``{"error": ...}``.

crewai is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import inspect
import json
import threading
import typing
from functools import cache
from typing import Any

DESCRIPTIONS: dict[str, str] = {
    "search_products": "Search the store's catalogue by name, category, SKU or description (Arabic or English). "
    "Returns products with id, price, currency, stock and sizes, best match first.",
    "get_product": "One product of the store by its numeric id: name, price, stock, sizes and description.",
    "check_stock": "Whether a product (by numeric id) is in stock, and how many units are left.",
    "kpi_summary": "The store's sales figures over the last `days` days: revenue, orders, average order value, "
    "best seller, growth against the previous period and campaign ROI.",
    "campaign_history": "The store's recent ad campaigns with platform, objective, spend, revenue and ROAS.",
    "search_knowledge": "Search the store's documents (policies, FAQs, guides) and the marketing library. "
    "Returns passages with their sources.",
    "create_stock_alert": "Register the customer in this conversation to be told when a product (by id) is back "
    "in stock.",
    "book_appointment": "Book a service for the customer in this conversation at `start` (ISO 8601 date and time, "
    "the store's local time).",
    "tag_contact": "Add labels to the customer in this conversation (e.g. interests, lead quality).",
    "schedule_follow_up": "Schedule a follow-up with the customer in this conversation at `due` (ISO 8601) "
    "with a reason.",
    "escalate_to_human": "Hand this conversation to a human member of staff, with the reason and priority "
    "(high or urgent).",
}

_PARAMETER_NOTES: dict[str, str] = {
    "query": "What to look for, in the user's words.",
    "product_id": "The product's numeric id, as returned by search_products.",
    "limit": "How many results at most.",
    "days": "How many days back.",
    "k": "How many passages at most.",
    "labels": "Labels to add.",
    "service": "The service to book.",
    "start": "ISO 8601 date and time.",
    "duration_minutes": "Length of the appointment in minutes.",
    "due": "ISO 8601 date and time.",
    "reason": "Why.",
    "priority": "high or urgent.",
    "in_stock_only": "Only products in stock.",
}


@cache
def _tool_class() -> type:
    from crewai.tools import BaseTool
    from pydantic import ConfigDict, Field

    class ToolBoxTool(BaseTool):  # type: ignore[misc]
        """One ToolBox method, bound to the box's tenant."""

        model_config = ConfigDict(arbitrary_types_allowed=True)
        toolbox: Any = Field(default=None, exclude=True)
        method_name: str = ""
        home_thread: int = 0

        def _run(self, **arguments: Any) -> str:
            try:
                result = self.toolbox.call(self.method_name, **arguments)
            except Exception as exc:  # a tool never takes the turn down; the model sees the error
                result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            finally:
                if threading.get_ident() != self.home_thread:
                    # crewai ran the tool in a thread of its own: its connection is not the
                    # turn's, and nothing else would close it.
                    from django.db import connections

                    connections.close_all()
            return json.dumps(result, ensure_ascii=False, default=str)

    return ToolBoxTool


@cache
def _arguments_model(toolbox_class: type, name: str) -> type:
    """The pydantic model of a ToolBox method's arguments (built once per process)."""
    method = getattr(toolbox_class, name)
    from pydantic import Field, create_model

    fields: dict[str, Any] = {}
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # an annotation that does not resolve: let pydantic accept anything
        hints = {}
    for parameter in list(inspect.signature(method).parameters.values())[1:]:  # after self
        annotation = hints.get(parameter.name, Any)
        description = _PARAMETER_NOTES.get(parameter.name, parameter.name.replace("_", " "))
        if parameter.default is inspect.Parameter.empty:
            fields[parameter.name] = (annotation, Field(description=description))
        else:
            fields[parameter.name] = (annotation, Field(default=parameter.default, description=description))
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Arguments"
    return create_model(model_name, **fields)


def build_crewai_tools(toolbox: Any, names: tuple[str, ...] | list[str]) -> list[Any]:
    """One crewai ``BaseTool`` per ToolBox method in ``names`` (unknown names are refused)."""
    tool_class = _tool_class()
    tools = []
    for name in names:
        if name not in toolbox.names:
            raise ValueError(f"unknown tool {name!r}")
        method = getattr(toolbox, name)
        tools.append(
            tool_class(
                name=name,
                description=DESCRIPTIONS.get(name) or (inspect.getdoc(method) or name),
                args_schema=_arguments_model(type(toolbox), name),  # type: ignore[arg-type]
                toolbox=toolbox,
                method_name=name,
                home_thread=threading.get_ident(),
            )
        )
    return tools
