-- 100,000 rows through an index, then grouped and joined: sqlite3's VM, B-tree
-- and pager on a file in tmpfs.
PRAGMA journal_mode = MEMORY;
CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, price REAL);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO item SELECT i, 'item-' || (i * 7919 % 100003), i % 97, (i * 31 % 1000) / 10.0 FROM n;
COMMIT;
CREATE INDEX item_name ON item (name);
SELECT count(*), sum(grp), printf('%.1f', sum(price)) FROM item;
SELECT count(*) FROM item WHERE name LIKE 'item-1%';
SELECT grp, count(*), printf('%.2f', avg(price)) FROM item GROUP BY grp ORDER BY 3 DESC LIMIT 1;
SELECT count(*) FROM item a JOIN item b ON a.name = b.name WHERE a.id < 20000;
