"""The log pipeline: record → processors → renderer → queue → writer → files."""
