"""storeedge edge package."""
