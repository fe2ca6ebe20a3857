from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model

from crm.models import Contact, Order, OrderItem, Product, ProductDailyStat, SentimentMention
from morvo.models import Membership, Tenant


class ScopedFactory(factory.django.DjangoModelFactory):
    """Tenant-scoped models refuse unscoped managers; factories create through the base manager."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class: Any) -> Any:
        return model_class._base_manager


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    business_type = Tenant.BusinessType.RETAIL


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def saved(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Membership.Role.OWNER


class ContactFactory(ScopedFactory):
    class Meta:
        model = Contact

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")


class ProductFactory(ScopedFactory):
    class Meta:
        model = Product

    tenant = factory.SubFactory(TenantFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    name_ar = factory.Sequence(lambda n: f"عطر {n}")
    name_en = factory.Sequence(lambda n: f"Perfume {n}")
    category = "perfume"
    price = Decimal("199.00")
    stock_quantity = 10


class OrderFactory(ScopedFactory):
    class Meta:
        model = Order

    tenant = factory.SubFactory(TenantFactory)
    number = factory.Sequence(lambda n: f"ORD-{n:05d}")
    customer_name = "Noura"
    total = Decimal("199.00")
    status = Order.Status.PAID


class OrderItemFactory(ScopedFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    tenant = factory.SelfAttribute("order.tenant")
    product = factory.SubFactory(ProductFactory, tenant=factory.SelfAttribute("..tenant"))
    quantity = 1
    unit_price = Decimal("199.00")


class ProductDailyStatFactory(ScopedFactory):
    class Meta:
        model = ProductDailyStat

    product = factory.SubFactory(ProductFactory)
    tenant = factory.SelfAttribute("product.tenant")
    date = factory.Sequence(lambda n: date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + n))
    views = 100
    units_sold = 3
    revenue = Decimal("597.00")


class SentimentMentionFactory(ScopedFactory):
    class Meta:
        model = SentimentMention

    tenant = factory.SubFactory(TenantFactory)
    source = "twitter"
    platform = "x"
    text = "عطر رائع وريحته تدوم"
    score = Decimal("0.800")
    label = SentimentMention.Label.POSITIVE
