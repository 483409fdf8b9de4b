"""What is measured, alerted on and shown: metric names, alert rules, dashboards (data; no cdk8s)."""
