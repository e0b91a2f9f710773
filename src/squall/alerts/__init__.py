"""Usage alerts: quota thresholds and the failure rate, as signed webhook events and banners."""
