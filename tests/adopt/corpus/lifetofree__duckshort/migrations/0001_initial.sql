-- stub migration (corpus fixture)
SELECT 1;
