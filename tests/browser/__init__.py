"""Browser tests of the steward console (Playwright driving Debian's Chromium)."""
