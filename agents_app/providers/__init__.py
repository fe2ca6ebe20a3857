"""LLM providers: OpenAI-compatible endpoints configured by environment, primary then fallback.

``chain().complete(messages, role=...)`` answers through the first provider that works and
raises ``ProvidersUnavailable`` when none does (the pipeline then uses the offline brain).
``role_config(role)`` gives the crew the same providers. Nothing here imports ``openai`` or
``crewai`` at import time.
"""

from agents_app.providers.breaker import breaker
from agents_app.providers.chain import (
    Completion,
    Provider,
    ProviderChain,
    ProvidersUnavailable,
    canonical_role,
    chain,
    configured,
    provider_label,
    providers,
    reset,
    role_config,
)
from agents_app.providers.schema import SchemaError, parse_and_validate, validate

__all__ = [
    "Completion",
    "Provider",
    "ProviderChain",
    "ProvidersUnavailable",
    "SchemaError",
    "breaker",
    "canonical_role",
    "chain",
    "configured",
    "parse_and_validate",
    "provider_label",
    "providers",
    "reset",
    "role_config",
    "validate",
]
