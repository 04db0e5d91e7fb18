"""Real-browser tests of the Dagster UI on a small demo (Chromium through Playwright)."""
