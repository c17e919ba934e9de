"""Realistic generated catalog data: Indian grocery, apparel and electronics, INR in paise.

Used by the demo seeder (`kirana run` seeds a few thousand products through
`kirana.api.seed.SEEDERS`) and by `kirana catalog generate --count N` for benchmarks. Rows go in
with PostgreSQL COPY, so 100k products (about 300k variants) take seconds, not minutes.
Deterministic for a given seed; every batch gets its own slug/SKU prefix so runs never collide.
Past 400 lines because most of it is data (the word lists the products are made from).
"""

from __future__ import annotations

import random
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

# (slug, name, parent slug)
CATEGORIES: list[tuple[str, str, str | None]] = [
    ("grocery", "Grocery & Staples", None),
    ("dal-pulses", "Dal & Pulses", "grocery"),
    ("rice-atta", "Rice, Atta & Flours", "grocery"),
    ("oils-ghee", "Oils & Ghee", "grocery"),
    ("spices-masalas", "Spices & Masalas", "grocery"),
    ("snacks-namkeen", "Snacks & Namkeen", "grocery"),
    ("tea-coffee", "Tea & Coffee", "grocery"),
    ("dairy", "Dairy & Eggs", "grocery"),
    ("sugar-salt", "Sugar, Salt & Jaggery", "grocery"),
    ("household", "Household", None),
    ("detergents", "Detergents & Laundry", "household"),
    ("bath-soaps", "Bath Soaps & Body Wash", "household"),
    ("apparel", "Fashion", None),
    ("men-kurtas", "Men's Kurtas", "apparel"),
    ("men-tshirts", "Men's T-Shirts", "apparel"),
    ("women-sarees", "Sarees", "apparel"),
    ("women-kurtis", "Women's Kurtis", "apparel"),
    ("jeans", "Jeans", "apparel"),
    ("electronics", "Electronics", None),
    ("mobiles", "Mobiles", "electronics"),
    ("audio", "Earbuds & Headphones", "electronics"),
    ("power-banks", "Power Banks & Chargers", "electronics"),
    ("smart-watches", "Smart Watches", "electronics"),
]

# Brands of the templates that name none (apparel and electronics, by department).
BRANDS: dict[str, list[str]] = {
    "apparel": [
        "Khadi Loom",
        "Banaras Weaves",
        "Jaipur Block",
        "Urban Desi",
        "Chennai Cotton",
        "Kolkata Tant House",
        "Denim Nagar",
    ],
    "electronics": ["Veer Mobile", "Tarang Audio", "Bijli Power", "Samay Wear", "Chakra Tech", "Dhwani"],
}


@dataclass(frozen=True)
class Template:
    category: str
    nouns: list[str]
    adjectives: list[str]
    # (label, attribute dict, price range in rupees) per variant option
    options: list[tuple[str, dict[str, str], tuple[int, int]]]
    tax_class: str
    variants: tuple[int, int] = (1, 3)
    brands: tuple[str, ...] = ()  # empty: the department's BRANDS
    blurb: str = "Sourced for Indian kitchens and homes"


GROCERY_PACKS = [
    ("500 g", {"pack": "500 g"}, (60, 110)),
    ("1 kg", {"pack": "1 kg"}, (110, 210)),
    ("2 kg", {"pack": "2 kg"}, (210, 400)),
    ("5 kg", {"pack": "5 kg"}, (450, 950)),
]
SIZES = ["S", "M", "L", "XL", "XXL"]
COLOURS = ["Indigo", "Maroon", "Mustard", "Bottle Green", "Off-White", "Black", "Peach", "Navy", "Rani Pink"]


def _g(
    weight: float,
    category: str,
    brands: tuple[str, ...],
    nouns: list[str],
    adjectives: list[str],
    options: list[tuple[str, dict[str, str], tuple[int, int]]],
    blurb: str,
    tax: str = "gst_5",
) -> tuple[float, Template]:
    return weight, Template(category, nouns, adjectives, options, tax, (1, 3), brands, blurb)


SPICE_PACKS = [
    ("50 g", {"pack": "50 g"}, (30, 60)),
    ("100 g", {"pack": "100 g"}, (50, 110)),
    ("200 g", {"pack": "200 g"}, (90, 190)),
]
OIL_PACKS = [
    ("500 ml", {"pack": "500 ml"}, (90, 160)),
    ("1 L", {"pack": "1 L"}, (150, 320)),
    ("5 L", {"pack": "5 L"}, (700, 1500)),
]

# Nouns may carry a Hinglish or English alias in brackets, as Indian shelves label them.
TEMPLATES: list[tuple[float, Template]] = [
    _g(
        0.06,
        "dal-pulses",
        ("Tata Sampann", "24 Mantra Organic", "Patanjali"),
        [
            "Toor Dal (Arhar)",
            "Moong Dal",
            "Chana Dal",
            "Masoor Dal",
            "Urad Dal",
            "Rajma (Kidney Beans)",
            "Kabuli Chana (Chickpeas)",
        ],
        ["Unpolished", "Premium", "Organic", "Farm Fresh"],
        GROCERY_PACKS,
        "Cleaned and sorted lentils that cook soft for everyday dal and khichdi",
        "gst_0",
    ),
    _g(
        0.04,
        "rice-atta",
        ("Aashirvaad", "Pillsbury", "Fortune"),
        ["Whole Wheat Atta", "Chakki Fresh Atta", "Multigrain Atta", "Besan (Gram Flour)", "Sooji (Rava)"],
        ["Select", "Superior MP", "Classic", "High Fibre"],
        GROCERY_PACKS,
        "Stone ground flour for soft rotis, parathas and puris",
    ),
    _g(
        0.04,
        "rice-atta",
        ("India Gate", "Daawat", "Kohinoor"),
        ["Basmati Rice", "Sona Masoori Rice", "Kolam Rice", "Brown Rice", "Ponni Rice"],
        ["Aged", "Classic", "Rozana", "Super"],
        GROCERY_PACKS,
        "Long grains that stay separate; for biryani, pulao and daily chawal",
    ),
    _g(
        0.05,
        "oils-ghee",
        ("Fortune", "Saffola", "Dhara"),
        ["Sunflower Oil", "Mustard Oil (Kachi Ghani)", "Soyabean Oil", "Rice Bran Oil", "Groundnut Oil"],
        ["Refined", "Cold Pressed", "Gold", "Lite"],
        OIL_PACKS,
        "Cooking oil for tadka, frying and everyday sabzi",
    ),
    _g(
        0.03,
        "oils-ghee",
        ("Amul", "Patanjali", "Gowardhan"),
        ["Desi Ghee", "Cow Ghee", "A2 Ghee"],
        ["Pure", "Danedar", "Premium"],
        OIL_PACKS,
        "Clarified butter with a rich aroma for rotis, dal and sweets",
    ),
    _g(
        0.08,
        "spices-masalas",
        ("MDH", "Everest", "Catch"),
        [
            "Turmeric Powder (Haldi)",
            "Red Chilli Powder (Lal Mirch)",
            "Jeera (Cumin Seeds)",
            "Garam Masala",
            "Coriander Powder (Dhania)",
            "Chole Masala",
            "Kitchen King Masala",
            "Elaichi (Green Cardamom)",
        ],
        ["Pure", "Stone Ground", "Premium", "Homestyle"],
        SPICE_PACKS,
        "Ground and packed fresh for the colour and aroma of home cooking",
    ),
    _g(
        0.07,
        "snacks-namkeen",
        ("Haldiram's", "Bikaji", "Bikanervala"),
        ["Aloo Bhujia", "Khatta Meetha", "Moong Dal Namkeen", "Navratan Mix", "Banana Chips", "Chakli"],
        ["Crunchy", "Masala", "Classic", "Lite"],
        [("150 g", {"pack": "150 g"}, (35, 70)), ("400 g", {"pack": "400 g"}, (90, 160))],
        "Crisp namkeen for chai time and guests",
    ),
    _g(
        0.04,
        "tea-coffee",
        ("Tata Tea", "Brooke Bond", "Wagh Bakri"),
        ["Assam Tea", "Masala Chai", "Darjeeling Tea", "Green Tea", "Elaichi Chai"],
        ["Premium", "Gold", "Strong", "Leaf"],
        [("250 g", {"pack": "250 g"}, (120, 260)), ("500 g", {"pack": "500 g"}, (230, 480))],
        "Strong, aromatic tea for a proper cup of chai",
    ),
    _g(
        0.02,
        "tea-coffee",
        ("Bru", "Nescafe", "Continental"),
        ["Filter Coffee", "Instant Coffee"],
        ["Classic", "Gold", "Strong"],
        [("100 g", {"pack": "100 g"}, (150, 320)), ("200 g", {"pack": "200 g"}, (280, 560))],
        "South Indian style coffee, rich and frothy",
    ),
    _g(
        0.05,
        "dairy",
        ("Amul", "Mother Dairy", "Nandini"),
        ["Toned Milk (Doodh)", "Paneer", "Dahi (Curd)", "Salted Butter", "Cheese Slices"],
        ["Fresh", "Taaza", "Gold", "Malai"],
        [("200 g", {"pack": "200 g"}, (40, 110)), ("500 g", {"pack": "500 g"}, (90, 240))],
        "Farm fresh dairy, chilled from the dairy to your door",
        "gst_0",
    ),
    _g(
        0.03,
        "sugar-salt",
        ("Tata", "Madhur", "Dhampure"),
        ["Sugar (Cheeni)", "Iodised Salt (Namak)", "Rock Salt (Sendha Namak)", "Jaggery (Gur)"],
        ["Pure", "Refined", "Organic", "Sulphurless"],
        GROCERY_PACKS,
        "Kitchen essentials in a resealable pack",
    ),
    _g(
        0.04,
        "detergents",
        ("Surf Excel", "Ariel", "Tide", "Rin"),
        ["Detergent Powder", "Liquid Detergent", "Detergent Bar"],
        ["Matic", "Easy Wash", "Quick Wash", "Top Load"],
        [("1 kg", {"pack": "1 kg"}, (110, 260)), ("2 kg", {"pack": "2 kg"}, (210, 480))],
        "Tough on stains, gentle on clothes; for bucket and machine wash",
        "gst_18",
    ),
    _g(
        0.03,
        "bath-soaps",
        ("Lux", "Dettol", "Santoor", "Medimix"),
        ["Bath Soap (Sabun)", "Body Wash", "Handwash"],
        ["Sandal", "Aloe Vera", "Neem", "Original"],
        [("4 x 100 g", {"pack": "4 x 100 g"}, (120, 220)), ("250 ml", {"pack": "250 ml"}, (99, 199))],
        "Daily bathing care with a long-lasting fragrance",
        "gst_18",
    ),
    (
        0.08,
        Template(
            "men-kurtas",
            ["Cotton Kurta", "Linen Kurta", "Chikankari Kurta", "Nehru Jacket Set"],
            ["Straight", "Festive", "Slim Fit", "Handloom"],
            [],
            "gst_5",
            (2, 6),
            blurb="Breathable everyday and festive wear",
        ),
    ),
    (
        0.07,
        Template(
            "men-tshirts",
            ["Round Neck T-Shirt", "Polo T-Shirt", "Graphic Tee", "Henley"],
            ["Organic Cotton", "Regular Fit", "Oversized", "Striped"],
            [],
            "gst_5",
            (2, 6),
            blurb="Soft cotton that holds its shape wash after wash",
        ),
    ),
    (
        0.06,
        Template(
            "women-sarees",
            ["Banarasi Silk Saree", "Kanjivaram Saree", "Chanderi Saree", "Cotton Tant Saree"],
            ["Zari Border", "Handwoven", "Printed", "Bridal"],
            [],
            "gst_5",
            (1, 3),
            blurb="Woven by artisans, with blouse piece",
        ),
    ),
    (
        0.05,
        Template(
            "women-kurtis",
            ["Anarkali Kurti", "A-Line Kurti", "Straight Kurti", "Kurta Palazzo Set"],
            ["Block Print", "Embroidered", "Rayon", "Cotton"],
            [],
            "gst_5",
            (2, 6),
            blurb="Easy ethnic wear for office and festivals",
        ),
    ),
    (
        0.04,
        Template(
            "jeans",
            ["Slim Jeans", "Straight Jeans", "Tapered Jeans"],
            ["Stretch", "Dark Wash", "Mid Rise"],
            [],
            "gst_5",
            (2, 5),
            blurb="Denim with a comfortable stretch",
        ),
    ),
    (
        0.05,
        Template(
            "mobiles",
            ["5G Smartphone", "Pro Smartphone", "Lite Smartphone"],
            ["Neo", "Max", "Plus", "Prime"],
            [
                ("4GB+64GB", {"storage": "64 GB", "ram": "4 GB"}, (7999, 11999)),
                ("6GB+128GB", {"storage": "128 GB", "ram": "6 GB"}, (11999, 19999)),
                ("8GB+256GB", {"storage": "256 GB", "ram": "8 GB"}, (18999, 44999)),
            ],
            "gst_18",
            (1, 3),
            blurb="Big battery, bright display and dual SIM",
        ),
    ),
    (
        0.03,
        Template(
            "audio",
            ["TWS Earbuds", "Neckband", "Over-Ear Headphones"],
            ["Bass Boost", "ANC", "Sport"],
            [],
            "gst_18",
            (1, 3),
            blurb="Clear calls and deep bass with fast charging",
        ),
    ),
    (
        0.03,
        Template(
            "power-banks",
            ["Power Bank 10000mAh", "Power Bank 20000mAh", "65W GaN Charger"],
            ["Fast Charge", "Slim", "Dual Port"],
            [],
            "gst_18",
            (1, 2),
            blurb="Charges phones and earbuds on the go",
        ),
    ),
    (
        0.02,
        Template(
            "smart-watches",
            ["Smart Watch", "Fitness Band"],
            ["AMOLED", "Calling", "Rugged"],
            [],
            "gst_18",
            (1, 3),
            blurb="Tracks steps, sleep and heart rate",
        ),
    ),
]


def brands_of(t: Template) -> tuple[str, ...]:
    """The brands a template's products carry."""
    if t.brands:
        return t.brands
    dept = next(p for slug, _, p in CATEGORIES if slug == t.category)
    assert dept is not None
    return tuple(BRANDS[dept])


def all_brands() -> list[str]:
    return list(dict.fromkeys(b for _, t in TEMPLATES for b in brands_of(t)))


APPAREL_PRICE = {
    "men-kurtas": (499, 2499),
    "men-tshirts": (299, 999),
    "women-sarees": (799, 9999),
    "women-kurtis": (399, 1999),
    "jeans": (799, 2999),
}
GADGET_PRICE = {"audio": (999, 4999), "power-banks": (699, 2499), "smart-watches": (1499, 6999)}


def _slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def _rupees(rng: random.Random, lo: int, hi: int) -> int:
    """A shelf price in paise, ending in 9 rupees like real price tags."""
    r = rng.randint(lo, hi)
    r = max(9, r - r % 10 + 9)
    return r * 100


def _mrp(rng: random.Random, price: int) -> int:
    discount = rng.choice([0, 0, 5, 10, 12, 15, 20, 25, 30, 40])
    mrp = price * 100 // (100 - discount)
    return max(price, (mrp + 99) // 100 * 100)


@dataclass(frozen=True)
class Made:
    """What a generated product was made of (search quality judgments read it)."""

    product_id: uuid.UUID
    template: int  # index into TEMPLATES
    brand: str
    adjective: str
    noun: str
    published: bool


@dataclass
class Batch:
    products: list[tuple[Any, ...]] = field(default_factory=list)
    variants: list[tuple[Any, ...]] = field(default_factory=list)
    made: list[Made] = field(default_factory=list)


def _variants_for(
    rng: random.Random, t: Template, sku_base: str, title: str
) -> Iterator[tuple[str, dict[str, str], int, int, str, int]]:
    n = rng.randint(*t.variants)
    if t.options:
        picked = sorted(rng.sample(range(len(t.options)), min(n, len(t.options))))
        opts = [t.options[i] for i in picked]
        for i, (_label, attrs, (lo, hi)) in enumerate(opts):
            price = _rupees(rng, lo, hi)
            yield f"{sku_base}-{i + 1}", dict(attrs), price, _mrp(rng, price), t.tax_class, _stock(rng)
        return
    lo, hi = APPAREL_PRICE.get(t.category) or GADGET_PRICE.get(t.category) or (499, 1999)
    base = _rupees(rng, lo, hi)
    mrp = _mrp(rng, base)
    tax = t.tax_class
    if t.tax_class == "gst_5" and base > 2500_00:
        tax = "gst_18"  # garments above ₹2,500 attract 18%
    colours = rng.sample(COLOURS, 2 if n > 3 else 1)
    is_apparel = t.category in APPAREL_PRICE and t.category != "women-sarees"
    combos = [(c, sz) for c in colours for sz in (SIZES if is_apparel else [""])]
    for i, (colour, size) in enumerate(combos[:n]):
        attrs = {"colour": colour} | ({"size": size} if size else {})
        yield f"{sku_base}-{i + 1}", attrs, base, mrp, tax, _stock(rng)
    del title


def _stock(rng: random.Random) -> int:
    return 0 if rng.random() < 0.05 else rng.randint(5, 500)


def build(
    count: int,
    *,
    category_ids: dict[str, uuid.UUID],
    brand_ids: dict[str, uuid.UUID],
    seed: int | None = None,
) -> Batch:
    rng = random.Random(seed)
    prefix = secrets.token_hex(3) if seed is None else f"{seed % 0xFFFFFF:06x}"
    weights = [w for w, _ in TEMPLATES]
    now = datetime.now(UTC)
    batch = Batch()
    for i in range(count):
        ti = rng.choices(range(len(TEMPLATES)), weights)[0]
        t = TEMPLATES[ti][1]
        brand = rng.choice(brands_of(t))
        adjective, noun = rng.choice(t.adjectives), rng.choice(t.nouns)
        title = f"{brand} {adjective} {noun}"
        slug = f"{_slugify(title)}-{prefix}{i:06d}"
        pid = uuid.uuid4()
        sku_base = f"{t.category[:3].upper()}-{prefix.upper()}{i:06d}"
        variants = list(_variants_for(rng, t, sku_base, title))
        cheapest = min(variants, key=lambda v: (v[2], v[3]))
        published = rng.random() < 0.95
        published_at = now - timedelta(minutes=rng.randint(0, 180 * 24 * 60)) if published else None
        batch.products.append(
            (
                pid,
                slug,
                title,
                f"{t.blurb}. {brand} quality, sold at or below MRP.",
                brand_ids[_slugify(brand)],
                category_ids[t.category],
                [f"https://img.kirana.dev/p/{slug}/1.jpg", f"https://img.kirana.dev/p/{slug}/2.jpg"],
                published,
                published_at,
                cheapest[2],
                cheapest[3],
            )
        )
        batch.made.append(Made(pid, ti, brand, adjective, noun, published))
        for pos, (sku, attrs, price, mrp, tax, stock) in enumerate(variants):
            batch.variants.append((uuid.uuid4(), pid, sku, Jsonb(attrs), price, mrp, tax, stock, True, pos))
    return batch


def ensure_taxonomy(conn: Connection) -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    """Create the demo categories and brands if missing; returns slug -> id maps."""
    paths: dict[str, str] = {}
    for slug, name, parent in CATEGORIES:
        paths[slug] = f"{paths[parent]}/{slug}" if parent else slug
        conn.execute(
            text(
                "INSERT INTO catalog_categories (id, parent_id, slug, name, path, position) "
                "VALUES (:id, (SELECT id FROM catalog_categories WHERE slug = :parent), "
                ":slug, :name, :path, 0) "
                "ON CONFLICT (slug) DO NOTHING"
            ),
            {"id": uuid.uuid4(), "parent": parent, "slug": slug, "name": name, "path": paths[slug]},
        )
    for name in all_brands():
        conn.execute(
            text(
                "INSERT INTO catalog_brands (id, slug, name) VALUES (:id, :slug, :name) "
                "ON CONFLICT (slug) DO NOTHING"
            ),
            {"id": uuid.uuid4(), "slug": _slugify(name), "name": name},
        )
    conn.execute(
        text(
            "INSERT INTO sync_changes (entity, entity_id, deleted, created_at) "
            "SELECT 'category', c.id, false, now() FROM catalog_categories c WHERE NOT EXISTS "
            "(SELECT 1 FROM sync_changes s WHERE s.entity = 'category' AND s.entity_id = c.id) "
            "UNION ALL SELECT 'brand', b.id, false, now() FROM catalog_brands b WHERE NOT EXISTS "
            "(SELECT 1 FROM sync_changes s WHERE s.entity = 'brand' AND s.entity_id = b.id)"
        )
    )
    cats = {r.slug: r.id for r in conn.execute(text("SELECT slug, id FROM catalog_categories"))}
    brands = {r.slug: r.id for r in conn.execute(text("SELECT slug, id FROM catalog_brands"))}
    return cats, brands


PRODUCT_COLUMNS = (
    "id, slug, title, description, brand_id, category_id, image_urls, is_published, published_at, "
    "min_price_paise, min_price_mrp_paise"
)
VARIANT_COLUMNS = (
    "id, product_id, sku, attributes, price_paise, mrp_paise, tax_class, stock, is_active, position"
)


def insert(conn: Connection, batch: Batch) -> None:
    """COPY one batch in (same transaction as the caller), with a sync change per product."""
    raw: Any = conn.connection.driver_connection
    now = datetime.now(UTC)
    with raw.cursor() as cur:
        with cur.copy(f"COPY catalog_products ({PRODUCT_COLUMNS}) FROM STDIN") as copy:
            for row in batch.products:
                copy.write_row(row)
        with cur.copy(f"COPY catalog_variants ({VARIANT_COLUMNS}) FROM STDIN") as copy:
            for row in batch.variants:
                copy.write_row(row)
        with cur.copy("COPY sync_changes (entity, entity_id, deleted, created_at) FROM STDIN") as copy:
            for row in batch.products:
                copy.write_row(("product", row[0], False, now))


def generate(conn: Connection, count: int, *, seed: int | None = None, chunk: int = 10_000) -> int:
    cats, brands = ensure_taxonomy(conn)
    made = 0
    while made < count:
        n = min(chunk, count - made)
        insert(
            conn, build(n, category_ids=cats, brand_ids=brands, seed=None if seed is None else seed + made)
        )
        made += n
    return made


def seed_demo(conn: Connection) -> int:
    """Seeder for `kirana run`: a few thousand products the first time, nothing afterwards."""
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM catalog_products)")).scalar():
        return 0
    from kirana.api.settings import load_settings

    count = load_settings().seed_catalog_products
    return generate(conn, count, seed=2024)
