"""Product search on PostgreSQL: full text, facets, typo tolerance, synonyms, suggestions."""
