-- Repository names and tags compare byte by byte, whatever the database's locale: the catalog
-- and tag lists page in that order, and the repositories of a registry are the range between
-- '<name>/' and '<name>0', which a locale that ignores punctuation would not keep together.
-- (SQLite compares text this way already.)
ALTER TABLE repository_manifests ALTER COLUMN repository TYPE TEXT COLLATE "C";
ALTER TABLE repository_tags ALTER COLUMN repository TYPE TEXT COLLATE "C";
ALTER TABLE repository_tags ALTER COLUMN tag TYPE TEXT COLLATE "C";
ALTER TABLE helm_charts ALTER COLUMN repository TYPE TEXT COLLATE "C";
