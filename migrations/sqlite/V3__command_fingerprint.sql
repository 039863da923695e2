-- A digest of the request a command came from, so a retry under the same id with another
-- request is told apart from a true retry.
ALTER TABLE commands ADD COLUMN fingerprint TEXT;
