from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from crm.demo_data import demo_extras_seed, seed_demo


class Command(BaseCommand):
    help = (
        "Seed the demo tenant (slug 'demo': an Arabic perfume-and-fashion shop with 90 days of store data) "
        "once. A second run changes nothing. The last two lines are the owner's e-mail and password."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo(stdout=self.stdout)
        demo_extras_seed(result.tenant)
