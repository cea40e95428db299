-- Rows whose date could not be read are quarantined too, with a NULL session and their reason.
ALTER TABLE quarantined_bars ALTER COLUMN session DROP NOT NULL;
