"""Dexterous hand tasks: the Shadow robot hand and a human hand in one tabletop scene (`hand/<task>`)."""
