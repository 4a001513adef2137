"""storeedge kiosk package."""
