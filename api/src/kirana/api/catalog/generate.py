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

BRANDS: dict[str, list[str]] = {
    "grocery": [
        "Annapurna Foods",
        "Desi Farms",
        "Ganga Valley",
        "Sahyadri Organics",
        "Kaveri Gold",
        "Malabar Spice Co",
        "Rajbhog",
        "Nilgiri Estates",
        "Chatpata",
        "Shudh Bharat",
    ],
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


GROCERY_PACKS = [
    ("500 g", {"pack": "500 g"}, (60, 110)),
    ("1 kg", {"pack": "1 kg"}, (110, 210)),
    ("2 kg", {"pack": "2 kg"}, (210, 400)),
    ("5 kg", {"pack": "5 kg"}, (450, 950)),
]
SIZES = ["S", "M", "L", "XL", "XXL"]
COLOURS = ["Indigo", "Maroon", "Mustard", "Bottle Green", "Off-White", "Black", "Peach", "Navy", "Rani Pink"]

TEMPLATES: list[tuple[float, Template]] = [
    (
        0.10,
        Template(
            "dal-pulses",
            ["Toor Dal", "Moong Dal", "Chana Dal", "Masoor Dal", "Urad Dal", "Rajma", "Kabuli Chana"],
            ["Unpolished", "Premium", "Organic", "Farm Fresh"],
            GROCERY_PACKS,
            "gst_0",
            (1, 3),
        ),
    ),
    (
        0.10,
        Template(
            "rice-atta",
            ["Basmati Rice", "Sona Masoori Rice", "Chakki Atta", "Besan", "Ponni Rice", "Multigrain Atta"],
            ["Aged", "Classic", "Select", "Whole Wheat"],
            GROCERY_PACKS,
            "gst_5",
            (1, 3),
        ),
    ),
    (
        0.08,
        Template(
            "oils-ghee",
            ["Cold Pressed Groundnut Oil", "Mustard Oil", "Desi Ghee", "Sunflower Oil", "Coconut Oil"],
            ["Kachi Ghani", "Pure", "Refined", "A2"],
            [
                ("500 ml", {"pack": "500 ml"}, (90, 160)),
                ("1 L", {"pack": "1 L"}, (150, 320)),
                ("5 L", {"pack": "5 L"}, (700, 1500)),
            ],
            "gst_5",
            (1, 3),
        ),
    ),
    (
        0.08,
        Template(
            "spices-masalas",
            ["Garam Masala", "Haldi Powder", "Kashmiri Mirch", "Sambar Powder", "Chole Masala", "Jeera"],
            ["Stone Ground", "Homestyle", "Extra Hot", "Premium"],
            [
                ("50 g", {"pack": "50 g"}, (30, 60)),
                ("100 g", {"pack": "100 g"}, (50, 110)),
                ("200 g", {"pack": "200 g"}, (90, 190)),
            ],
            "gst_5",
            (1, 3),
        ),
    ),
    (
        0.08,
        Template(
            "snacks-namkeen",
            ["Aloo Bhujia", "Khatta Meetha", "Banana Chips", "Moong Dal Namkeen", "Chakli", "Mathri"],
            ["Crunchy", "Masala", "Classic", "Lite"],
            [("150 g", {"pack": "150 g"}, (35, 70)), ("400 g", {"pack": "400 g"}, (90, 160))],
            "gst_5",
            (1, 2),
        ),
    ),
    (
        0.06,
        Template(
            "tea-coffee",
            ["Assam Tea", "Masala Chai", "Filter Coffee", "Darjeeling Tea", "Green Tea"],
            ["Strong", "Estate", "Premium", "Elaichi"],
            [("250 g", {"pack": "250 g"}, (120, 260)), ("500 g", {"pack": "500 g"}, (230, 480))],
            "gst_5",
            (1, 2),
        ),
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
        ),
    ),
    (
        0.07,
        Template(
            "women-sarees",
            ["Banarasi Silk Saree", "Kanjivaram Saree", "Chanderi Saree", "Cotton Tant Saree"],
            ["Zari Border", "Handwoven", "Printed", "Bridal"],
            [],
            "gst_5",
            (1, 3),
        ),
    ),
    (
        0.06,
        Template(
            "women-kurtis",
            ["Anarkali Kurti", "A-Line Kurti", "Straight Kurti", "Kurta Palazzo Set"],
            ["Block Print", "Embroidered", "Rayon", "Cotton"],
            [],
            "gst_5",
            (2, 6),
        ),
    ),
    (
        0.05,
        Template(
            "jeans",
            ["Slim Jeans", "Straight Jeans", "Tapered Jeans"],
            ["Stretch", "Dark Wash", "Mid Rise"],
            [],
            "gst_5",
            (2, 5),
        ),
    ),
    (
        0.06,
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
        ),
    ),
    (
        0.04,
        Template(
            "audio",
            ["TWS Earbuds", "Neckband", "Over-Ear Headphones"],
            ["Bass Boost", "ANC", "Sport"],
            [],
            "gst_18",
            (1, 3),
        ),
    ),
    (
        0.04,
        Template(
            "power-banks",
            ["Power Bank 10000mAh", "Power Bank 20000mAh", "65W GaN Charger"],
            ["Fast Charge", "Slim", "Dual Port"],
            [],
            "gst_18",
            (1, 2),
        ),
    ),
    (
        0.03,
        Template(
            "smart-watches",
            ["Smart Watch", "Fitness Band"],
            ["AMOLED", "Calling", "Rugged"],
            [],
            "gst_18",
            (1, 3),
        ),
    ),
]

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


@dataclass
class Batch:
    products: list[tuple[Any, ...]] = field(default_factory=list)
    variants: list[tuple[Any, ...]] = field(default_factory=list)


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
        t = rng.choices([t for _, t in TEMPLATES], weights)[0]
        dept = next(p for slug, _, p in CATEGORIES if slug == t.category)
        assert dept is not None
        brand = rng.choice(BRANDS[dept])
        title = f"{brand} {rng.choice(t.adjectives)} {rng.choice(t.nouns)}"
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
                f"{title}. Sourced for Indian kitchens and homes; sold at or below MRP.",
                brand_ids[_slugify(brand)],
                category_ids[t.category],
                [f"https://img.kirana.dev/p/{slug}/1.jpg", f"https://img.kirana.dev/p/{slug}/2.jpg"],
                published,
                published_at,
                cheapest[2],
                cheapest[3],
            )
        )
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
    for names in BRANDS.values():
        for name in names:
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
