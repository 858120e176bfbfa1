"""Scheduled functions (AWS only: Chalice turns each into a Lambda function run by an EventBridge rule)."""
