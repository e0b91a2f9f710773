"""The operator's domain: operator tokens and the views across every key (issue 15)."""
