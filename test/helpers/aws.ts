export { dynamoClient, scanAll, sqsClient, startDynalite, startFauxqs, stopAllDynalites, type DynaliteProcess, type Fauxqs } from "../../harness/aws.js";
