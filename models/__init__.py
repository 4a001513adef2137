"""storeedge models package."""
