"""The store's product catalog and the products suggested for a shopping list (docs/catalog.md)."""
