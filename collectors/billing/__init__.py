"""Billing sources: AWS Cost Explorer, CUR 2.0/FOCUS exports in S3, and FOCUS/CUR files."""
