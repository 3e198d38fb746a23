int czenml_tfrecord_placeholder(void) { return 0; }
