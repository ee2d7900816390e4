"""Reports and audit over HTTP, with CSV and XLSX exports."""
