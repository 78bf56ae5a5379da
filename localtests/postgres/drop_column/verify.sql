SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'note' AND NOT attisdropped;
