/** The environment variable through which the primary hands its validated configuration to workers. */
export const WORKER_CONFIG_ENV = "CEREBELLUM_WORKER_CONFIG";
