"""Delivery of secrets to processes: environment injection, dotenv files, exports."""
