"""The demo tenant: an Arabic perfume-and-fashion shop with 90 days of believable store data.

``seed_demo()`` is what ``manage.py seed_demo`` and the one-command runtime call. It is
idempotent (the tenant with slug ``demo`` is the marker: once it exists nothing is
written), runs in one transaction, and is deterministic for a given date: the random
generator has a fixed seed and every date is computed relative to today, so the window
always ends today and always contains one promotional season.

The owner's password is generated once and kept in ``settings.VAR_DIR /
"demo_owner_password"`` (mode 600) so later runs, and the runtime's banner, can show it.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db import connection, transaction
from django.utils import timezone

from crm.models import Contact, Order, OrderItem, Product, ProductDailyStat, SentimentMention
from morvo import services
from morvo.models import Tenant

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.morvo.local"
DEMO_LOGIN_FILENAME = "demo_owner_password"
DEMO_DAYS = 90
DEMO_TIMEZONE = "Asia/Riyadh"
DEMO_RANDOM_SEED = 20240923
# Any constant works; it only has to be the same in every process that may seed at once.
_ADVISORY_LOCK_KEY = 7_240_923_001

DEMO_TENANT_FIELDS: dict[str, Any] = {
    "name": "دار العود | Dar Al Oud",
    "business_type": Tenant.BusinessType.RETAIL,
    "default_language": Tenant.Language.ARABIC,
    "currency": "SAR",
    "timezone": DEMO_TIMEZONE,
    "primary_color": "#7a4b1f",
    "target_audience": (
        "نساء ورجال في المملكة العربية السعودية بين 22 و45 عاماً، أغلبهم في الرياض وجدة والدمام، "
        "يعشقون العود والمسك والبخور الفاخر، ويبحثون عن هدايا المناسبات (رمضان والعيد والأعراس واليوم الوطني) "
        "وعن عبايات وأزياء تقليدية أنيقة للعمل والمناسبات. يتسوقون من الجوال غالباً مساء الخميس والجمعة."
    ),
    "brand_voice": (
        "دافئ وراقٍ ومضياف، بلهجة سعودية بيضاء قريبة من العميل. نحتفي بتراث العود والبخور بلا مبالغة، "
        "نصف الروائح بدقة (المكونات والثبات والفوحان)، نذكر السعر بالريال بوضوح، ونستخدم الإيموجي باعتدال."
    ),
}

# Categories (Arabic, as the shop's staff name them).
OUD_OIL = "دهن العود"
PERFUME = "عطور"
MUSK = "مسك"
BAKHOOR = "بخور"
ABAYA = "عبايات"
SHEMAGH = "شماغات"
JALABIYA = "جلابيات"
GIFT_SET = "أطقم هدايا"
ACCESSORY = "إكسسوارات"


class DemoProduct(NamedTuple):
    sku: str
    name_ar: str
    name_en: str
    category: str
    price: str
    stock: int
    popularity: int  # relative weight of sales and views, 1..10
    description: str
    draft: bool = False
    sold_out_days_ago: int = 0  # out-of-stock products stopped selling this many days ago


DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    # Oud oils
    DemoProduct(
        "OUD-001", "دهن عود كمبودي ملكي", "Royal Cambodian Oud Oil", OUD_OIL, "1250.00", 14, 6,
        "دهن عود كمبودي معتّق لعشر سنوات، فوحان قوي وثبات يتجاوز اليوم الكامل. تولة (12 مل).",
    ),
    DemoProduct(
        "OUD-002", "دهن عود هندي معتّق", "Aged Indian Oud Oil", OUD_OIL, "890.00", 9, 5,
        "دهن عود هندي بطابع حيواني دافئ ولمسة جلدية، لعشاق العود الثقيل. نصف تولة.",
    ),
    DemoProduct(
        "OUD-003", "دهن عود ماليزي", "Malaysian Oud Oil", OUD_OIL, "420.00", 25, 7,
        "دهن عود ماليزي ناعم وحلو، مناسب للاستخدام اليومي وللمبتدئين في عالم العود. 6 مل.",
    ),
    DemoProduct(
        "OUD-004", "دهن عود لاوسي", "Laotian Oud Oil", OUD_OIL, "680.00", 0, 4,
        "دهن عود لاوسي بنفحات عسلية وخشبية، إنتاج محدود من موسم واحد. 6 مل.",
        sold_out_days_ago=12,
    ),
    DemoProduct(
        "OUD-005", "دهن عود بورمي", "Burmese Oud Oil", OUD_OIL, "540.00", 11, 3,
        "دهن عود بورمي بطابع مدخّن ونفحة توابل، ثبات عالٍ على الملابس. 6 مل.",
    ),
    DemoProduct(
        "OUD-006", "دهن عود سيوفي فاخر", "Premium Seufi Oud Oil", OUD_OIL, "1600.00", 4, 2,
        "دهن عود سيوفي نادر بتقطير تقليدي، رائحة عميقة تتطور على البشرة لساعات. تولة.",
    ),
    # Perfumes
    DemoProduct(
        "PRF-001", "عطر ليالي نجد", "Nights of Najd Eau de Parfum", PERFUME, "345.00", 60, 10,
        "عطر شرقي بالعود والعنبر والزعفران، مستوحى من سهرات نجد. 100 مل أو دي بارفان.",
    ),
    DemoProduct(
        "PRF-002", "عطر ورد طائفي", "Taif Rose Eau de Parfum", PERFUME, "395.00", 0, 9,
        "ورد طائفي مقطّر من مزارع الهدا مع لمسة مسك أبيض، أنثوي وفخم. 100 مل.",
        sold_out_days_ago=4,
    ),
    DemoProduct(
        "PRF-003", "عطر عنبر الصحراء", "Desert Amber Eau de Parfum", PERFUME, "285.00", 48, 7,
        "عنبر دافئ مع الفانيلا والبخور، مناسب لليالي الشتاء. 100 مل.",
    ),
    DemoProduct(
        "PRF-004", "عطر مسك وعود", "Musk & Oud Eau de Parfum", PERFUME, "310.00", 35, 8,
        "توازن بين نعومة المسك وعمق العود، عطر يومي للرجال والنساء. 100 مل.",
    ),
    DemoProduct(
        "PRF-005", "عطر زعفران ملكي", "Royal Saffron Eau de Parfum", PERFUME, "365.00", 22, 6,
        "زعفران إيراني مع الورد والعود، حضور قوي للمناسبات. 75 مل.",
    ),
    DemoProduct(
        "PRF-006", "عطر نسيم البحر", "Sea Breeze Eau de Toilette", PERFUME, "225.00", 40, 4,
        "عطر منعش بالحمضيات والنفحات البحرية، مثالي لصيف جدة. 100 مل.",
    ),
    DemoProduct(
        "PRF-007", "عطر الياسمين الدمشقي", "Damascene Jasmine Eau de Parfum", PERFUME, "260.00", 18, 5,
        "ياسمين أبيض مع زهر البرتقال، رقيق ومشرق. 75 مل.",
    ),
    DemoProduct(
        "PRF-008", "عطر صندل ميسور", "Mysore Sandalwood Eau de Parfum", PERFUME, "420.00", 0, 3,
        "صندل ميسوري كريمي مع الهيل، هادئ وراقٍ. 100 مل.",
        sold_out_days_ago=27,
    ),
    DemoProduct(
        "PRF-009", "عطر ليالي نجد - حجم السفر", "Nights of Najd Travel Spray", PERFUME, "65.00", 150, 8,
        "نسخة الجيب من عطرنا الأكثر مبيعاً، 10 مل تناسب الحقيبة والسفر.",
    ),
    # Musk
    DemoProduct(
        "MSK-001", "مسك الطهارة", "Musk Al Tahara", MUSK, "45.00", 200, 10,
        "مسك الطهارة الأبيض الكريمي، نظيف وناعم ويدوم طويلاً. 15 غرام.",
    ),
    DemoProduct(
        "MSK-002", "مسك أبيض ناعم", "Soft White Musk", MUSK, "75.00", 120, 8,
        "مسك أبيض بزيت خفيف يناسب البشرة الحساسة. 12 مل.",
    ),
    DemoProduct(
        "MSK-003", "مسك الغزال", "Deer Musk Blend", MUSK, "180.00", 30, 4,
        "مزيج مسك الغزال الصناعي الفاخر مع العنبر، دافئ وعميق. 12 مل.",
    ),
    DemoProduct(
        "MSK-004", "مسك الرمان", "Pomegranate Musk", MUSK, "85.00", 0, 6,
        "مسك فاكهي بالرمان والتوت، منعش ومحبوب عند الشابات. 12 مل.",
        sold_out_days_ago=8,
    ),
    DemoProduct(
        "MSK-005", "كريم مسك الفانيلا", "Vanilla Musk Body Cream", MUSK, "95.00", 55, 5,
        "كريم جسم معطّر بالمسك والفانيلا، يرطب ويثبّت العطر. 200 مل.",
    ),
    # Bakhoor
    DemoProduct(
        "BKH-001", "بخور معطّر فاخر", "Premium Scented Bakhoor", BAKHOOR, "120.00", 80, 8,
        "بخور معطّر بالعود والورد والعنبر، يعطّر المجلس والملابس. 60 غرام.",
    ),
    DemoProduct(
        "BKH-002", "معمول العود", "Oud Maamoul Bakhoor", BAKHOOR, "150.00", 45, 6,
        "معمول تقليدي من نشارة العود والدهن، دخانه كثيف ورائحته تبقى في البيت. 50 غرام.",
    ),
    DemoProduct(
        "BKH-003", "عود كمبودي قطع", "Cambodian Oud Chips 50g", BAKHOOR, "890.00", 12, 3,
        "قطع عود كمبودي طبيعي للتبخير، درجة أولى غنية بالدهن. 50 غرام.",
    ),
    DemoProduct(
        "BKH-004", "بخور الورد", "Rose Bakhoor", BAKHOOR, "95.00", 70, 5,
        "بخور بالورد الطائفي والمسك، خفيف ومناسب للاستقبال. 60 غرام.",
    ),
    DemoProduct(
        "BKH-005", "مبخرة كهربائية", "Electric Incense Burner", BAKHOOR, "165.00", 40, 4,
        "مبخرة كهربائية قابلة للشحن بتصميم ذهبي، آمنة وسريعة التسخين.",
    ),
    DemoProduct(
        "BKH-006", "مبخرة نحاسية تراثية", "Heritage Brass Mabkhara", BAKHOOR, "230.00", 15, 3,
        "مبخرة نحاسية منقوشة يدوياً بتصميم نجدي تراثي.",
    ),
    # Abayas
    DemoProduct(
        "ABY-001", "عباية كريب سوداء كلاسيكية", "Classic Black Crepe Abaya", ABAYA, "320.00", 35, 8,
        "عباية كريب ياباني بقصة مستقيمة وأكمام واسعة، عملية وأنيقة. المقاسات 52 إلى 60.",
    ),
    DemoProduct(
        "ABY-002", "عباية مطرزة بخيوط ذهبية", "Gold-Embroidered Abaya", ABAYA, "590.00", 12, 5,
        "عباية سوداء بتطريز ذهبي يدوي على الأكمام، للمناسبات والأعراس.",
    ),
    DemoProduct(
        "ABY-003", "عباية كتان بيج", "Beige Linen Abaya", ABAYA, "380.00", 20, 4,
        "عباية كتان خفيفة بلون بيج، مريحة للصيف وللسفر.",
    ),
    DemoProduct(
        "ABY-004", "عباية بشت ملكية", "Royal Bisht Abaya", ABAYA, "750.00", 0, 4,
        "عباية بقصة البشت مع حواف مطرزة بالزري، إطلالة ملكية للمناسبات.",
        sold_out_days_ago=18,
    ),
    DemoProduct(
        "ABY-005", "عباية عملية بجيوب", "Everyday Abaya with Pockets", ABAYA, "260.00", 45, 6,
        "عباية يومية بقماش لا يتجعد وجيوب جانبية، مثالية للعمل والجامعة.",
    ),
    DemoProduct(
        "ABY-006", "عباية مخمل شتوية", "Winter Velvet Abaya", ABAYA, "490.00", 18, 3,
        "عباية مخمل ناعم بلون كحلي غامق، دافئة لأمسيات الشتاء.",
    ),
    DemoProduct(
        "ABY-007", "طرحة شيفون", "Chiffon Tarha Headscarf", ABAYA, "55.00", 150, 7,
        "طرحة شيفون خفيفة لا تنزلق، متوفرة بالأسود والكحلي والبيج.",
    ),
    # Shemaghs
    DemoProduct(
        "SHM-001", "شماغ أحمر فاخر", "Premium Red Shemagh", SHEMAGH, "185.00", 60, 7,
        "شماغ قطن مصري مضاعف بنقشة حمراء ثابتة وكوي يدوم.",
    ),
    DemoProduct(
        "SHM-002", "غترة بيضاء صيفية", "Summer White Ghutra", SHEMAGH, "120.00", 55, 5,
        "غترة بيضاء خفيفة من قماش فوال سويسري، مناسبة للصيف.",
    ),
    DemoProduct(
        "SHM-003", "شماغ قطني كلاسيكي", "Classic Cotton Shemagh", SHEMAGH, "95.00", 90, 6,
        "شماغ قطني بالنقشة الكلاسيكية، للاستخدام اليومي.",
    ),
    DemoProduct(
        "SHM-004", "عقال مرعز أسود", "Black Marez Agal", SHEMAGH, "75.00", 70, 4,
        "عقال مرعز أسود بخياطة متينة وطول قياسي.",
    ),
    # Jalabiyas and thobes
    DemoProduct(
        "JLB-001", "جلابية مطرزة", "Embroidered Jalabiya", JALABIYA, "280.00", 25, 5,
        "جلابية نسائية بتطريز على الصدر، مثالية لجمعات رمضان والعيد.",
    ),
    DemoProduct(
        "JLB-002", "جلابية أطفال قطنية", "Kids' Cotton Jalabiya", JALABIYA, "120.00", 40, 4,
        "جلابية قطنية ناعمة للبنات من عمر 3 إلى 12 سنة.",
    ),
    DemoProduct(
        "JLB-003", "ثوب رجالي سعودي", "Men's Saudi Thobe", JALABIYA, "240.00", 50, 6,
        "ثوب رجالي بقصة سعودية وياقة ملكية، قماش ياباني أبيض.",
    ),
    DemoProduct(
        "JLB-004", "قفطان حرير مغربي", "Moroccan Silk Kaftan", JALABIYA, "520.00", 0, 3,
        "قفطان حرير بتطريز مغربي يدوي، قطعة مميزة للمناسبات.",
        sold_out_days_ago=35,
    ),
    DemoProduct(
        "JLB-005", "ثوب شتوي صوف", "Winter Wool Thobe", JALABIYA, "310.00", 30, 3,
        "ثوب صوف رمادي دافئ لبرد الشتاء في الرياض والقصيم.",
    ),
    # Gift sets
    DemoProduct(
        "GFT-001", "طقم هدية دار العود الملكي", "Dar Al Oud Royal Gift Set", GIFT_SET, "950.00", 15, 5,
        "صندوق فاخر يضم دهن عود ماليزي وعطر ليالي نجد وبخور معطّر ومبخرة صغيرة.",
    ),
    DemoProduct(
        "GFT-002", "طقم العروس", "Bridal Fragrance Set", GIFT_SET, "780.00", 10, 3,
        "طقم العروس: ورد طائفي ومسك أبيض وكريم مسك وبخور الورد في صندوق مخملي.",
    ),
    DemoProduct(
        "GFT-003", "صندوق المسك والبخور", "Musk & Bakhoor Box", GIFT_SET, "260.00", 40, 6,
        "هدية لطيفة: مسك الطهارة ومسك أبيض وعلبة بخور معطّر.",
    ),
    DemoProduct(
        "GFT-004", "طقم العيد للرجال", "Men's Eid Set", GIFT_SET, "430.00", 22, 4,
        "شماغ أحمر فاخر مع دهن عود ماليزي وعطر مسك وعود، جاهز للإهداء.",
    ),
    DemoProduct(
        "GFT-005", "طقم اليوم الوطني", "Saudi National Day Gift Set", GIFT_SET, "299.00", 50, 4,
        "إصدار خاص باللون الأخضر: عطر وبخور ومبخرة صغيرة. قيد التجهيز.",
        draft=True,
    ),
    # Accessories
    DemoProduct(
        "ACC-001", "سبحة كهرمان", "Amber Prayer Beads", ACCESSORY, "210.00", 25, 4,
        "سبحة كهرمان طبيعي 33 حبة مع شرابة فضية.",
    ),
    DemoProduct(
        "ACC-002", "علبة عطور خشبية", "Wooden Perfume Case", ACCESSORY, "145.00", 30, 2,
        "علبة خشب جوز مبطنة بالمخمل لحفظ زجاجات العطر ودهن العود.",
    ),
    DemoProduct(
        "ACC-003", "حقيبة يد جلدية", "Leather Handbag", ACCESSORY, "640.00", 8, 3,
        "حقيبة يد من الجلد الطبيعي بلون عودي، تُطرح قريباً.",
        draft=True,
    ),
)  # fmt: skip

DEMO_CONTACTS: tuple[tuple[str, str, str, str], ...] = (
    # name, e-mail, phone (E.164), language
    ("نورة القحطاني", "noura.alqahtani@example.com", "+966501847263", "ar"),
    ("عبدالله العتيبي", "abdullah.alotaibi@example.com", "+966553916402", "ar"),
    ("ريم الحربي", "reem.alharbi@example.com", "+966548203715", "ar"),
    ("فهد الدوسري", "fahad.aldosari@example.com", "+966567421098", "ar"),
    ("لمى الشهري", "lama.alshehri@example.com", "+966590372846", "ar"),
    ("خالد الغامدي", "khalid.alghamdi@example.com", "+966536619054", "ar"),
    ("سارة الزهراني", "sara.alzahrani@example.com", "+966582047139", "ar"),
    ("محمد المطيري", "mohammed.almutairi@example.com", "+966505538271", "ar"),
    ("هند السبيعي", "hind.alsubaie@example.com", "+966544790316", "ar"),
    ("سلطان الشمري", "sultan.alshammari@example.com", "+966561283947", "ar"),
    ("أمل الحارثي", "amal.alharthi@example.com", "+966598465102", "ar"),
    ("Omar Haddad", "omar.haddad@example.com", "+966539027654", "en"),
)

# Guest checkouts: a name on the order, no CRM contact.
GUEST_NAMES: tuple[str, ...] = (
    "منيرة العنزي", "تركي السهلي", "جواهر الرشيدي", "بندر القرني", "العنود المالكي", "ماجد الجهني",
    "دانة البقمي", "نايف العمري", "شهد الزهراني", "يوسف البلوي", "رهف الشهراني", "سعود العسيري",
    "غادة الفيفي", "عبدالرحمن الخالدي", "منال الرويلي", "فيصل الحازمي", "أروى الثبيتي", "راكان العتيبي",
    "Aisha Khan", "Daniel Morris",
)  # fmt: skip


class DemoMention(NamedTuple):
    platform: str
    source: str
    text: str
    score: str
    sku: str | None
    days_ago: int
    hour: int


DEMO_MENTIONS: tuple[DemoMention, ...] = (
    DemoMention(
        "x", "@reem_alharbi",
        "دهن العود الكمبودي من دار العود ثباته خيالي، من الصبح لين الليل وريحته تفوح 👌",
        "0.920", "OUD-001", 2, 22,
    ),
    DemoMention(
        "instagram", "@nouf.style",
        "العباية السوداء الكلاسيكية قماشها ثقيل ومريح والقصّة مرتبة، أنصح فيها",
        "0.780", "ABY-001", 3, 20,
    ),
    DemoMention(
        "snapchat", "@abu_faisal_ksa",
        "ورد طائفي خلص من المتجر للمرة الثانية! متى يرجع؟ 😤",
        "-0.450", "PRF-002", 1, 23,
    ),
    DemoMention(
        "google_reviews", "Google Maps — فرع الرياض، حي الملقا",
        "خدمة ممتازة والموظفين يعطونك تجربة لكل العطور قبل الشراء",
        "0.850", None, 6, 18,
    ),
    DemoMention(
        "tiktok", "@oud_lover",
        "جربت معمول العود، ريحته حلوة بس يخلص بسرعة",
        "0.080", "BKH-002", 9, 21,
    ),
    DemoMention(
        "x", "@mshari_q",
        "طلبت يوم الخميس ووصل السبت، التوصيل أبطأ من المتوقع",
        "-0.350", None, 5, 13,
    ),
    DemoMention(
        "instagram", "@lama.beauty",
        "مسك الطهارة هذا الإصدار أنعم من السابق 🤍",
        "0.700", "MSK-001", 11, 16,
    ),
    DemoMention(
        "google_reviews", "Google Maps — فرع جدة، حي الروضة",
        "الأسعار مرتفعة شوي مقارنة بالمحلات الثانية لكن الجودة واضحة",
        "0.050", None, 14, 19,
    ),
    DemoMention(
        "x", "@khalid_perfumes",
        "Ordered the Royal Gift Set for my wife: beautiful packaging and fast delivery to Dammam.",
        "0.880", "GFT-001", 17, 21,
    ),
    DemoMention(
        "tiktok", "@sara.unboxing",
        "فتحت طقم العروس من دار العود… التغليف فخم والعطور تجنن ✨",
        "0.900", "GFT-002", 20, 22,
    ),
    DemoMention(
        "snapchat", "@3bdullah",
        "الشماغ الأحمر لونه بهت بعد أول غسلة، ما توقعت كذا",
        "-0.700", "SHM-001", 8, 12,
    ),
    DemoMention(
        "google_reviews", "Google Reviews — online store",
        "Paying with Tabby was easy. Some product pages are only in Arabic, though.",
        "0.100", None, 24, 10,
    ),
    DemoMention(
        "instagram", "@hind.abayas",
        "طلبت عباية مطرزة والمقاس جاني غلط، والاستبدال أخذ أسبوعين",
        "-0.820", "ABY-002", 12, 17,
    ),
    DemoMention(
        "x", "@mohammed_ajmi",
        "عطر ليالي نجد صار عطري اليومي، كل من يقابلني يسألني وش حاط",
        "0.830", "PRF-001", 0, 9,
    ),
    DemoMention(
        "tiktok", "@saudi.scents",
        "Honest review: Desert Amber is close to the big-brand ambers, and good value at this price.",
        "0.300", "PRF-003", 27, 20,
    ),
)  # fmt: skip

PAYMENT_METHODS: tuple[tuple[str, int], ...] = (
    ("mada", 36),
    ("apple_pay", 30),
    ("cash_on_delivery", 18),
    ("tabby", 16),
)

# Monday = 0 … Sunday = 6. Thursday evening and Friday are the Saudi weekend rush.
WEEKDAY_FACTOR = (0.95, 0.9, 1.0, 1.45, 1.55, 1.15, 0.9)
# Orders by local hour: quiet mornings, busy evenings, a tail after midnight.
HOUR_WEIGHT = (3, 2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 7, 8, 10, 12, 13, 12, 8)
BASE_ORDERS_PER_DAY = 6.5
# A visitor converts at a few percent: views per unit sold on a given day.
VIEWS_PER_UNIT = (8, 20)


def sentiment_label(score: Decimal) -> str:
    """Scores within ±0.2 read as neutral; beyond, the sign decides."""
    if score > Decimal("0.2"):
        return SentimentMention.Label.POSITIVE
    if score < Decimal("-0.2"):
        return SentimentMention.Label.NEGATIVE
    return SentimentMention.Label.NEUTRAL


@dataclass(frozen=True)
class DemoSeason:
    """A promotional period inside the window: more orders, skewed towards some categories."""

    key: str
    name_ar: str
    name_en: str
    start: date
    end: date
    multiplier: float
    category_boost: dict[str, float] = field(default_factory=dict)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


# Umm al-Qura dates; a day off either way does not matter for a demo.
EID_AL_FITR = {
    2024: date(2024, 4, 10),
    2025: date(2025, 3, 30),
    2026: date(2026, 3, 20),
    2027: date(2027, 3, 10),
    2028: date(2028, 2, 27),
    2029: date(2029, 2, 15),
    2030: date(2030, 2, 5),
}
EID_AL_ADHA = {
    2024: date(2024, 6, 16),
    2025: date(2025, 6, 6),
    2026: date(2026, 5, 27),
    2027: date(2027, 5, 16),
    2028: date(2028, 5, 5),
    2029: date(2029, 4, 24),
    2030: date(2030, 4, 13),
}


def _black_friday(year: int) -> date:
    november_first = date(year, 11, 1)
    first_thursday = november_first + timedelta(days=(3 - november_first.weekday()) % 7)
    return first_thursday + timedelta(days=22)


def _seasons_of(year: int) -> list[DemoSeason]:
    black_friday = _black_friday(year)
    seasons = [
        DemoSeason(
            "white_friday", "أسبوع الجمعة البيضاء", "White Friday week",
            black_friday - timedelta(days=6), black_friday + timedelta(days=3), 2.4,
            {GIFT_SET: 2.2, OUD_OIL: 1.6, PERFUME: 1.5, BAKHOOR: 1.3},
        ),
        DemoSeason(
            "national_day", "عروض اليوم الوطني السعودي", "Saudi National Day offers",
            date(year, 9, 17), date(year, 9, 24), 1.9,
            {SHEMAGH: 2.4, GIFT_SET: 2.0, JALABIYA: 1.6, PERFUME: 1.3},
        ),
        DemoSeason(
            "founding_day", "عروض يوم التأسيس", "Founding Day offers",
            date(year, 2, 17), date(year, 2, 23), 1.7,
            {SHEMAGH: 2.0, JALABIYA: 1.8, BAKHOOR: 1.4, GIFT_SET: 1.5},
        ),
    ]  # fmt: skip
    if year in EID_AL_FITR:
        eid = EID_AL_FITR[year]
        seasons.append(
            DemoSeason(
                "ramadan_eid", "العشر الأواخر من رمضان وعيد الفطر", "Last ten nights of Ramadan and Eid al-Fitr",
                eid - timedelta(days=10), eid + timedelta(days=2), 2.3,
                {JALABIYA: 2.6, ABAYA: 2.0, BAKHOOR: 1.8, GIFT_SET: 2.2, OUD_OIL: 1.5},
            )
        )  # fmt: skip
    if year in EID_AL_ADHA:
        eid = EID_AL_ADHA[year]
        seasons.append(
            DemoSeason(
                "eid_al_adha", "عروض عيد الأضحى", "Eid al-Adha offers",
                eid - timedelta(days=6), eid + timedelta(days=2), 1.8,
                {GIFT_SET: 2.0, SHEMAGH: 1.8, JALABIYA: 1.8, OUD_OIL: 1.4},
            )
        )  # fmt: skip
    return seasons


def demo_season(today: date) -> DemoSeason:
    """The most recent promotional season lying wholly inside the 90 days ending ``today``
    (not touching either end, so the bump is visible); otherwise a plain campaign week."""
    first_day = today - timedelta(days=DEMO_DAYS - 1)
    candidates = [
        season
        for year in (today.year - 1, today.year)
        for season in _seasons_of(year)
        if season.start > first_day and season.end < today
    ]
    if candidates:
        return max(candidates, key=lambda season: season.end)
    return DemoSeason(
        "campaign_week", "أسبوع حملة دار العود", "Dar Al Oud campaign week",
        today - timedelta(days=40), today - timedelta(days=34), 1.8,
        {PERFUME: 1.6, OUD_OIL: 1.5, GIFT_SET: 1.5},
    )  # fmt: skip


@dataclass(frozen=True)
class DemoSeedResult:
    created: bool
    tenant: Tenant
    owner_email: str
    password: str | None  # None when the user existed and its password was not stored here
    season: DemoSeason | None = None
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def password_path() -> Path:
    # Read at call time: tests point VAR_DIR at a temporary directory.
    return Path(settings.VAR_DIR) / DEMO_LOGIN_FILENAME


def _password_read() -> str | None:
    try:
        return password_path().read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _password_store(password: str) -> None:
    path = password_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a leftover file
    os.replace(temporary, path)


def _known_password() -> str | None:
    """The stored password if it still signs the owner in: the account may predate the
    seed, or its owner may have changed the password since."""
    stored = _password_read()
    owner = get_user_model().objects.filter(email__iexact=DEMO_OWNER_EMAIL).order_by("pk").first()
    # hashers.check_password, not user.check_password: the latter may re-hash and write.
    if stored is None or owner is None or not check_password(stored, owner.password):
        return None
    return stored


def _say(stdout: Any, line: str) -> None:
    if stdout is not None:
        stdout.write(line + "\n")


def seed_demo(stdout: Any = None, *, now: datetime | None = None) -> DemoSeedResult:
    """Seed the demo tenant unless it exists. ``stdout`` (optional) receives a summary whose
    last two lines are the owner's e-mail and password. ``now`` fixes "today" (tests)."""
    started = time.perf_counter()
    now = now or timezone.now()
    new_password: str | None = None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two processes starting at once (the runtime and a manual run) must not both seed.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is not None:
            password = _known_password()
            _say(stdout, f"The demo tenant '{tenant.slug}' ({tenant.name}) is already seeded; nothing changed.")
            _say_login(stdout, password)
            return DemoSeedResult(created=False, tenant=tenant, owner_email=DEMO_OWNER_EMAIL, password=password)
        tenant, new_password = _tenant_and_owner_create()
        season, counts = _store_data_create(tenant, now)
        _crm_data_create(tenant, now)
    password = new_password or _known_password()
    if new_password:
        try:
            _password_store(new_password)
        except OSError as error:
            _say(stdout, f"Warning: could not keep the password in {password_path()}: {error}")
    seconds = time.perf_counter() - started
    _say(stdout, f"Seeded the demo tenant '{tenant.slug}' ({tenant.name}) in {seconds:.1f}s:")
    _say(
        stdout,
        "  {products} products ({out_of_stock} out of stock, {drafts} drafts), {contacts} contacts, "
        "{orders} orders with {order_items} items, {daily_stats} daily stats, {mentions} mentions.".format(**counts),
    )
    _say(stdout, f"  Season: {season.name_en} / {season.name_ar} ({season.start} to {season.end}).")
    _say_login(stdout, password)
    return DemoSeedResult(
        created=True,
        tenant=tenant,
        owner_email=DEMO_OWNER_EMAIL,
        password=password,
        season=season,
        counts=counts,
        seconds=seconds,
    )


def _say_login(stdout: Any, password: str | None) -> None:
    _say(stdout, f"E-mail: {DEMO_OWNER_EMAIL}")
    if password:
        _say(stdout, f"Password: {password}")
    else:
        _say(
            stdout,
            f"Password: (unchanged, and not the one in {password_path()}; "
            f"set one with: manage.py changepassword {DEMO_OWNER_EMAIL})",
        )


def _tenant_and_owner_create() -> tuple[Tenant, str | None]:
    """The demo tenant and its staff owner; the password is new only if the user is."""
    User = get_user_model()
    owner = User.objects.filter(email__iexact=DEMO_OWNER_EMAIL).order_by("pk").first()
    fields = dict(DEMO_TENANT_FIELDS)
    name = fields.pop("name")
    if owner is None:
        tenant, password = services.tenant_create_with_owner(
            slug=DEMO_SLUG, owner_email=DEMO_OWNER_EMAIL, name=name, **fields
        )
        owner = User.objects.get(email__iexact=DEMO_OWNER_EMAIL)
    else:
        tenant = services.tenant_create(name=name, owner=owner, slug=DEMO_SLUG, **fields)
        password = None
    if not owner.is_staff:
        owner.is_staff = True
        owner.save(update_fields=["is_staff"])
    return tenant, password


T = TypeVar("T")


def _weighted(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    return rng.choices([option for option, _ in options], weights=[weight for _, weight in options])[0]


def _order_status(rng: random.Random, age_days: int) -> str:
    status = Order.Status
    options: tuple[tuple[str, float], ...]
    if age_days <= 1:
        options = ((status.PENDING, 15), (status.PAID, 50), (status.SHIPPED, 30), (status.CANCELLED, 5))
    elif age_days <= 5:
        options = (
            (status.PAID, 5),
            (status.SHIPPED, 45),
            (status.DELIVERED, 42),
            (status.CANCELLED, 6),
            (status.REFUNDED, 2),
        )
    else:
        options = ((status.DELIVERED, 92), (status.CANCELLED, 5), (status.REFUNDED, 3))
    return _weighted(rng, options)


def _store_data_create(tenant: Tenant, now: datetime) -> tuple[DemoSeason, dict[str, int]]:
    rng = random.Random(DEMO_RANDOM_SEED)
    zone = ZoneInfo(DEMO_TIMEZONE)
    local_now = now.astimezone(zone)
    today = local_now.date()
    days = [today - timedelta(days=offset) for offset in range(DEMO_DAYS - 1, -1, -1)]
    season = demo_season(today)

    products = Product.objects.bulk_create(
        [
            Product(
                tenant=tenant,
                sku=item.sku,
                name_ar=item.name_ar,
                name_en=item.name_en,
                description=item.description,
                category=item.category,
                price=Decimal(item.price),
                currency=tenant.currency,
                stock_quantity=item.stock,
                status=Product.Status.DRAFT if item.draft else Product.Status.ACTIVE,
            )
            for item in DEMO_PRODUCTS
        ]
    )
    catalogue = list(zip(DEMO_PRODUCTS, products, strict=True))
    # Drafts were never published: no sales, no views, no daily stats.
    published = [(item, product) for item, product in catalogue if not item.draft]
    by_sku = {item.sku: product for item, product in catalogue}

    contacts = Contact.objects.bulk_create(
        [
            Contact(tenant=tenant, name=name, email=email, phone=phone, language=language)
            for name, email, phone, language in DEMO_CONTACTS
        ]
    )

    orders: list[Order] = []
    lines: list[tuple[Order, DemoProduct, Product, int]] = []
    for day in days:
        age = (today - day).days
        weekday = day.weekday()
        in_season = day in season
        trend = 0.9 + 0.2 * (DEMO_DAYS - 1 - age) / (DEMO_DAYS - 1)  # the shop grows a little
        mean = BASE_ORDERS_PER_DAY * WEEKDAY_FACTOR[weekday] * trend * (season.multiplier if in_season else 1.0)
        available = [
            (item, product, item.popularity * (season.category_boost.get(item.category, 1.0) if in_season else 1.0))
            for item, product in published
            if not item.sold_out_days_ago or age > item.sold_out_days_ago
        ]
        hour_weights = [
            weight
            * (1.5 if weekday in (3, 4) and (hour >= 19 or hour <= 1) else 1.0)
            # Friday noon prayer: the shop goes quiet.
            * (0.4 if weekday == 4 and 11 <= hour <= 13 else 1.0)
            for hour, weight in enumerate(HOUR_WEIGHT)
        ]
        # Day-to-day noise of ±25%: enough to look real, not enough to hide the weekly shape.
        for _ in range(round(mean * rng.uniform(0.75, 1.25))):
            hour = rng.choices(range(24), weights=hour_weights)[0]
            moment = datetime.combine(day, clock_time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=zone)
            line_count = _weighted(rng, ((1, 60), (2, 30), (3, 10)))
            chosen: list[tuple[DemoProduct, Product]] = []
            while len(chosen) < line_count:
                item, product, _weight = rng.choices(available, weights=[weight for *_, weight in available])[0]
                if all(product is not other for _, other in chosen):
                    chosen.append((item, product))
            status = _order_status(rng, age)
            payment = _weighted(rng, PAYMENT_METHODS)
            contact = rng.choice(contacts) if rng.random() < 0.3 else None
            if moment > local_now:
                continue  # later today: it has not happened yet (the draws above keep the stream stable)
            order = Order(
                tenant=tenant,
                customer=contact,
                customer_name=contact.name if contact else rng.choice(GUEST_NAMES),
                currency=tenant.currency,
                status=status,
                payment_method=payment,
                created_at=moment,
            )
            total = Decimal("0")
            for item, product in chosen:
                quantity = _weighted(rng, ((1, 82), (2, 14), (3, 4)))
                lines.append((order, item, product, quantity))
                total += product.price * quantity
            order.total = total
            orders.append(order)

    _every_contact_ordered(rng, orders, contacts)
    orders.sort(key=lambda order: order.created_at)
    for number, order in enumerate(orders, start=10001):
        order.number = f"DAO-{number}"
    Order.objects.bulk_create(orders)
    order_items = OrderItem.objects.bulk_create(
        [
            OrderItem(tenant=tenant, order=order, product=product, quantity=quantity, unit_price=product.price)
            for order, _item, product, quantity in lines
        ],
        batch_size=2000,
    )

    sold: dict[tuple[int, date], tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal("0")))
    for order, _item, product, quantity in lines:
        if order.status in Order.REVENUE_STATUSES:
            key = (product.pk, order.created_at.astimezone(zone).date())
            units, revenue = sold[key]
            sold[key] = (units + quantity, revenue + product.price * quantity)

    day_elapsed = (local_now - datetime.combine(today, clock_time(0), tzinfo=zone)).total_seconds() / 86400
    stats: list[ProductDailyStat] = []
    for day in days:
        age = (today - day).days
        in_season = day in season
        for item, product in published:
            units, revenue = sold.get((product.pk, day), (0, Decimal("0")))
            traffic = (6 + 9 * item.popularity) * WEEKDAY_FACTOR[day.weekday()] * rng.uniform(0.75, 1.25)
            if in_season:
                traffic *= 1 + (season.multiplier - 1) * season.category_boost.get(item.category, 1.0) / 2
            if item.sold_out_days_ago and age <= item.sold_out_days_ago:
                traffic *= 0.6  # people still look, and ask to be told when it is back
            if day == today:
                traffic *= day_elapsed
            views = max(1, round(traffic)) + units * rng.randint(*VIEWS_PER_UNIT)
            stats.append(
                ProductDailyStat(
                    tenant=tenant, product=product, date=day, views=views, units_sold=units, revenue=revenue
                )
            )
    ProductDailyStat.objects.bulk_create(stats, batch_size=2000)

    mentions = SentimentMention.objects.bulk_create(
        [
            SentimentMention(
                tenant=tenant,
                platform=mention.platform,
                source=mention.source,
                text=mention.text,
                score=Decimal(mention.score),
                label=sentiment_label(Decimal(mention.score)),
                product=by_sku[mention.sku] if mention.sku else None,
                created_at=min(
                    now,
                    datetime.combine(
                        today - timedelta(days=mention.days_ago), clock_time(mention.hour, 17), tzinfo=zone
                    ),
                ),
            )
            for mention in DEMO_MENTIONS
        ]
    )

    counts = {
        "products": len(products),
        "out_of_stock": sum(1 for item in DEMO_PRODUCTS if item.stock == 0),
        "drafts": sum(1 for item in DEMO_PRODUCTS if item.draft),
        "contacts": len(contacts),
        "orders": len(orders),
        "order_items": len(order_items),
        "daily_stats": len(stats),
        "mentions": len(mentions),
    }
    return season, counts


def _every_contact_ordered(rng: random.Random, orders: list[Order], contacts: list[Contact]) -> None:
    """A CRM contact with no order would be odd in a demo: give the quiet ones a guest order."""
    ordered = {id(order.customer) for order in orders if order.customer is not None}
    guest_orders = [order for order in orders if order.customer is None]
    for contact in contacts:
        if id(contact) in ordered or not guest_orders:
            continue
        order = guest_orders.pop(rng.randrange(len(guest_orders)))
        order.customer = contact
        order.customer_name = contact.name


def _crm_data_create(tenant: Tenant, now: datetime) -> None:
    """A little CRM around the store data: labels, a typed attribute, a segment, and customers
    waiting for out-of-stock products (the admin's stock-alert queue is not empty)."""
    from crm.models import ContactAttributeDefinition, Label, Segment, StockAlert

    Label.objects.for_tenant(tenant).bulk_create(
        [
            Label(tenant=tenant, name="vip", color="#b45309", description="عملاء مميزون"),
            Label(tenant=tenant, name="oud", color="#7c2d12", description="محبو العود"),
        ]
    )
    ContactAttributeDefinition.objects.for_tenant(tenant).create(tenant=tenant, key="city", label="المدينة")
    Segment.objects.for_tenant(tenant).create(
        tenant=tenant,
        name="VIP oud lovers",
        description="عملاء مميزون يحبون العود",
        definition={"labels_all": ["vip", "oud"]},
    )
    contacts = list(Contact.objects.for_tenant(tenant).order_by("id")[:12])
    cities = ["الرياض", "جدة", "الدمام"]
    for index, contact in enumerate(contacts):
        contact.labels = ["vip", "oud"] if index % 3 == 0 else (["oud"] if index % 3 == 1 else [])
        contact.attributes = {"city": cities[index % 3]}
    Contact.objects.for_tenant(tenant).bulk_update(contacts, ["labels", "attributes"])
    waiting_for = list(
        Product.objects.for_tenant(tenant).filter(stock_quantity=0, status=Product.Status.ACTIVE).order_by("sku")[:3]
    )
    alerts = (
        [
            StockAlert(
                tenant=tenant,
                contact=contact,
                product=waiting_for[index % len(waiting_for)],
                channel_type="web",
                message_text="أبغى أعرف متى يتوفر",
                created_at=now - timedelta(days=index + 1),
                expires_at=now + timedelta(days=30 - index - 1),
            )
            for index, contact in enumerate(contacts[:6])
        ]
        if waiting_for
        else []
    )
    StockAlert.objects.for_tenant(tenant).bulk_create(alerts)


def demo_extras_seed(tenant: Tenant, stdout: Any = None) -> None:
    """The rest of the demo, from the apps that own it, each idempotent: the global marketing
    library and the shop's own documents (knowledge), and three campaigns with their metrics
    and evaluations (campaigns). Safe to run on every start."""
    from campaigns.services import campaigns_seed_demo
    from knowledge.services import knowledge_seed_global, knowledge_seed_tenant

    started = time.perf_counter()
    library = knowledge_seed_global()
    documents = knowledge_seed_tenant(tenant)
    campaigns = campaigns_seed_demo(tenant)
    added = library["created"] + library["replaced"] + documents["created"] + documents["replaced"]
    if added:
        _say(
            stdout,
            f"  Knowledge: {added} documents loaded; campaigns: {len(campaigns)} "
            f"({time.perf_counter() - started:.1f}s).",
        )
