"""Excel workbook builders: commissioner reports and sender feedback."""
