int czenml_tfrecord_placeholder(void);
