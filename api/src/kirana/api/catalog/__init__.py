"""Catalog: brands, a category tree, products with variants (SKU, price, MRP, tax class, stock)."""
