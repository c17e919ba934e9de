"""The judged query set of search quality: each query with what it MEANS, as a predicate over
what the generator made a product of (template category, brand, noun), never over what the
engine returns. Grade 2: exactly what was asked for; grade 1: a reasonable second choice.
Read by `test_search_quality.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kirana.api.catalog.generate import TEMPLATES, Made

Judge = Callable[[Made], int]


def category(m: Made) -> str:
    return TEMPLATES[m.template][1].category


def noun(*subs: str, also: Judge | None = None) -> Judge:
    def judge(m: Made) -> int:
        if any(s.lower() in m.noun.lower() for s in subs):
            return 2
        return also(m) if also else 0

    return judge


def brand(*names: str) -> Judge:
    return lambda m: 2 if m.brand in names else 0


def cat(*slugs: str, also: Judge | None = None) -> Judge:
    def judge(m: Made) -> int:
        if category(m) in slugs:
            return 2
        return also(m) if also else 0

    return judge


def brand_noun(b: str, *subs: str) -> Judge:
    """Grade 2 for the brand's product, grade 1 for the same product of another brand."""

    def judge(m: Made) -> int:
        if not any(s.lower() in m.noun.lower() for s in subs):
            return 0
        return 2 if m.brand == b else 1

    return judge


def one(of: Judge, grade: int) -> Judge:
    return lambda m: min(grade, of(m))


@dataclass(frozen=True)
class Query:
    q: str
    kind: str  # exact | typo | synonym | hinglish | devanagari | brand | category | multi | prefix
    judge: Judge


ATTA = noun("Atta")
RICE = noun(
    "Basmati Rice",
    "Sona Masoori Rice",
    "Kolam Rice",
    "Brown Rice",
    "Ponni Rice",
    also=one(noun("Rice Bran"), 1),
)
MILK = noun("Toned Milk")
DAL = noun("Toor Dal", "Moong Dal", "Chana Dal", "Masoor Dal", "Urad Dal", also=one(cat("dal-pulses"), 1))
HALDI = noun("Turmeric")
JEERA = noun("Jeera")
SUGAR = noun("Sugar", also=one(cat("sugar-salt"), 1))
SALT = noun("Salt")
BESAN = noun("Besan")
TEA = noun("Tea", "Chai")
GHEE = noun("Ghee")
PANEER = noun("Paneer")
SOAP = noun("Bath Soap", also=one(cat("bath-soaps"), 1))
CHILLI = noun("Chilli")
DHANIA = noun("Coriander")
TOOR = noun("Toor Dal")
RAJMA = noun("Rajma")
CHANA = noun("Kabuli Chana", "Chana Dal", also=one(noun("Chole"), 1))
SOOJI = noun("Sooji")
GUR = noun("Jaggery")
MUSTARD_OIL = noun("Mustard Oil")
CURD = noun("Dahi")
OIL = noun(" Oil", "Oil (", also=one(cat("oils-ghee"), 1))
ELAICHI = noun("Elaichi (Green", also=one(noun("Elaichi Chai"), 1))
COFFEE = noun("Coffee")

QUERIES: list[Query] = [
    # Hinglish spellings and Devanagari (the shopper's own words)
    Query("atta", "hinglish", ATTA),
    Query("aata", "hinglish", ATTA),
    Query("आटा", "devanagari", ATTA),
    Query("chawal", "hinglish", RICE),
    Query("चावल", "devanagari", RICE),
    Query("doodh", "hinglish", MILK),
    Query("dudh", "hinglish", MILK),
    Query("दूध", "devanagari", MILK),
    Query("daal", "hinglish", DAL),
    Query("dal", "hinglish", DAL),
    Query("दाल", "devanagari", DAL),
    Query("haldi", "hinglish", HALDI),
    Query("हल्दी", "devanagari", HALDI),
    Query("jeera", "hinglish", JEERA),
    Query("zeera", "hinglish", JEERA),
    Query("जीरा", "devanagari", JEERA),
    Query("cheeni", "hinglish", SUGAR),
    Query("chini", "hinglish", SUGAR),
    Query("चीनी", "devanagari", SUGAR),
    Query("namak", "hinglish", SALT),
    Query("नमक", "devanagari", SALT),
    Query("besan", "hinglish", BESAN),
    Query("बेसन", "devanagari", BESAN),
    Query("chai", "hinglish", TEA),
    Query("चाय", "devanagari", TEA),
    Query("ghee", "hinglish", GHEE),
    Query("घी", "devanagari", GHEE),
    Query("paneer", "hinglish", PANEER),
    Query("पनीर", "devanagari", PANEER),
    Query("sabun", "hinglish", SOAP),
    Query("साबुन", "devanagari", SOAP),
    Query("lal mirch", "hinglish", CHILLI),
    Query("mirch", "hinglish", CHILLI),
    Query("dhania", "hinglish", DHANIA),
    Query("arhar dal", "hinglish", TOOR),
    Query("tur dal", "hinglish", TOOR),
    Query("rajma", "hinglish", RAJMA),
    Query("राजमा", "devanagari", RAJMA),
    Query("chana", "hinglish", CHANA),
    Query("sooji", "hinglish", SOOJI),
    Query("suji", "hinglish", SOOJI),
    Query("rava", "hinglish", SOOJI),
    Query("gur", "hinglish", GUR),
    Query("sarson tel", "hinglish", MUSTARD_OIL),
    Query("dahi", "hinglish", CURD),
    Query("elaichi", "hinglish", noun("Elaichi")),
    Query("tel", "hinglish", OIL),
    # English synonyms of Hinglish names
    Query("wheat flour", "synonym", ATTA),
    Query("rice", "synonym", RICE),
    Query("milk", "synonym", MILK),
    Query("lentils", "synonym", DAL),
    Query("turmeric", "synonym", HALDI),
    Query("cumin", "synonym", JEERA),
    Query("sugar", "synonym", SUGAR),
    Query("salt", "synonym", SALT),
    Query("gram flour", "synonym", BESAN),
    Query("tea", "synonym", TEA),
    Query("cottage cheese", "synonym", PANEER),
    Query("soap", "synonym", SOAP),
    Query("coriander", "synonym", DHANIA),
    Query("kidney beans", "synonym", RAJMA),
    Query("chickpeas", "synonym", CHANA),
    Query("jaggery", "synonym", GUR),
    Query("curd", "synonym", CURD),
    Query("cardamom", "synonym", ELAICHI),
    Query("mustard oil", "synonym", MUSTARD_OIL),
    # brands
    Query("tata sampann", "brand", brand("Tata Sampann")),
    Query("aashirvaad", "brand", brand("Aashirvaad")),
    Query("amul", "brand", brand("Amul")),
    Query("mdh", "brand", brand("MDH")),
    Query("everest", "brand", brand("Everest")),
    Query("haldirams", "brand", brand("Haldiram's")),
    Query("haldiram", "brand", brand("Haldiram's")),
    Query("india gate", "brand", brand("India Gate")),
    Query("daawat", "brand", brand("Daawat")),
    Query("fortune", "brand", brand("Fortune")),
    Query("saffola", "brand", brand("Saffola")),
    Query("surf excel", "brand", brand("Surf Excel")),
    Query("dettol", "brand", brand("Dettol")),
    Query("tata tea", "brand", brand("Tata Tea")),
    Query("brooke bond", "brand", brand("Brooke Bond")),
    Query("bru", "brand", brand("Bru")),
    Query("mother dairy", "brand", brand("Mother Dairy")),
    Query("patanjali", "brand", brand("Patanjali")),
    Query("bikaji", "brand", brand("Bikaji")),
    Query("pillsbury", "brand", brand("Pillsbury")),
    Query("wagh bakri", "brand", brand("Wagh Bakri")),
    Query("santoor", "brand", brand("Santoor")),
    Query("medimix", "brand", brand("Medimix")),
    Query("nescafe", "brand", brand("Nescafe")),
    Query("24 mantra", "brand", brand("24 Mantra Organic")),
    # categories
    Query("spices", "category", cat("spices-masalas")),
    Query("namkeen", "category", cat("snacks-namkeen")),
    Query("detergent", "category", cat("detergents")),
    Query("laundry", "category", cat("detergents")),
    Query("dairy", "category", cat("dairy")),
    Query("pulses", "category", cat("dal-pulses")),
    Query("body wash", "category", noun("Body Wash", also=one(cat("bath-soaps"), 1))),
    Query("kurta", "category", noun("Kurta")),
    Query("saree", "category", cat("women-sarees")),
    Query("sari", "category", cat("women-sarees")),
    Query("kurti", "category", noun("Kurti")),
    Query("jeans", "category", cat("jeans")),
    Query("smartphone", "category", cat("mobiles")),
    Query("earbuds", "category", noun("Earbuds", also=one(cat("audio"), 1))),
    Query("power bank", "category", noun("Power Bank")),
    Query("smart watch", "category", noun("Smart Watch", also=one(cat("smart-watches"), 1))),
    Query("coffee", "category", COFFEE),
    Query("oil", "category", OIL),
    # multi-word: brand and product
    Query("tata sampann toor dal", "multi", brand_noun("Tata Sampann", "Toor Dal")),
    Query("aashirvaad atta", "multi", brand_noun("Aashirvaad", "Atta")),
    Query("india gate basmati rice", "multi", brand_noun("India Gate", "Basmati Rice")),
    Query("amul paneer", "multi", brand_noun("Amul", "Paneer")),
    Query("amul ghee", "multi", brand_noun("Amul", "Ghee")),
    Query("fortune sunflower oil", "multi", brand_noun("Fortune", "Sunflower Oil")),
    Query("mdh garam masala", "multi", brand_noun("MDH", "Garam Masala")),
    Query("everest turmeric powder", "multi", brand_noun("Everest", "Turmeric")),
    Query("haldiram aloo bhujia", "multi", brand_noun("Haldiram's", "Aloo Bhujia")),
    Query("surf excel liquid detergent", "multi", brand_noun("Surf Excel", "Liquid Detergent")),
    Query("dettol handwash", "multi", brand_noun("Dettol", "Handwash")),
    Query("brooke bond masala chai", "multi", brand_noun("Brooke Bond", "Masala Chai")),
    Query("banarasi silk saree", "multi", noun("Banarasi Silk Saree")),
    Query("chikankari kurta", "multi", noun("Chikankari Kurta")),
    Query("moong dal", "multi", noun("Moong Dal", also=one(noun("Moong Dal Namkeen"), 2))),
    Query("garam masala", "multi", noun("Garam Masala")),
    Query("green tea", "multi", noun("Green Tea")),
    Query("basmati rice", "exact", noun("Basmati Rice")),
    Query("toor dal", "exact", TOOR),
    Query("aloo bhujia", "exact", noun("Aloo Bhujia")),
    Query("filter coffee", "exact", noun("Filter Coffee")),
    Query("desi ghee", "exact", noun("Desi Ghee")),
    Query("banana chips", "exact", noun("Banana Chips")),
    Query("kanjivaram saree", "exact", noun("Kanjivaram Saree")),
    # typos (Meilisearch allowance: 1 from 5 letters, 2 from 9)
    Query("basmathi rice", "typo", noun("Basmati Rice")),
    Query("turmerik", "typo", HALDI),
    Query("tumeric", "typo", HALDI),
    Query("detergant", "typo", cat("detergents")),
    Query("sunflwer oil", "typo", noun("Sunflower Oil")),
    Query("musterd oil", "typo", MUSTARD_OIL),
    Query("panner", "typo", PANEER),
    Query("paner", "typo", PANEER),
    Query("besen", "typo", BESAN),
    Query("bhujiya", "typo", noun("Aloo Bhujia")),
    Query("kurtha", "typo", noun("Kurta")),
    Query("charjer", "typo", noun("Charger")),
    Query("hedphones", "typo", noun("Headphones")),
    Query("aashirwad", "typo", brand("Aashirvaad")),
    Query("haldirm", "typo", brand("Haldiram's")),
    Query("smartfone", "typo", cat("mobiles")),
    # prefixes (as typed)
    Query("basm", "prefix", noun("Basmati Rice")),
    Query("aashir", "prefix", brand("Aashirvaad")),
    Query("turme", "prefix", HALDI),
    Query("bhuj", "prefix", noun("Aloo Bhujia")),
    Query("kanji", "prefix", noun("Kanjivaram Saree")),
    Query("chikan", "prefix", noun("Chikankari Kurta")),
    Query("deterg", "prefix", cat("detergents")),
    Query("panee", "prefix", PANEER),
    Query("tata samp", "prefix", brand("Tata Sampann")),
    Query("headph", "prefix", noun("Headphones")),
]
