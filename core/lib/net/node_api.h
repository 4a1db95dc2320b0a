/* core: the wire constants of the node API, shared by its server (southbound/) and its client
 * (the agent): method paths, the bearer token's audience and bounds. */
#ifndef EP_CORE_NODE_API_H
#define EP_CORE_NODE_API_H

/* onboardingmgr.v1: wire-compatible with the reference Onboarding Manager. */
#define EP_ONBOARDING_SERVICE_STREAM "/onboardingmgr.v1.NonInteractiveOnboardingService/OnboardNodeStream"
#define EP_ONBOARDING_SERVICE_CREATE "/onboardingmgr.v1.InteractiveOnboardingService/CreateNodes"
/* edgeprov.v1: calls an onboarded node makes with its bearer token. */
#define EP_NODE_SERVICE_REPORT_STATUS "/edgeprov.v1.NodeService/ReportStatus"
#define EP_NODE_SERVICE_STORE_RECOVERY_KEY "/edgeprov.v1.NodeService/StoreRecoveryKey" /* see node.proto */
#define EP_WORKFLOW_SERVICE_RUN "/edgeprov.v1.WorkflowService/Run"
/* edgeprov.v1: no token; a node whose onboarding failed names itself (see node.proto). */
#define EP_NODE_SERVICE_UPLOAD_BOOT_LOG "/edgeprov.v1.NodeService/UploadBootLog"
#define EP_BOOT_LOG_LINES_MAX 256    /* lines one upload may carry */
#define EP_BOOT_LOG_LINE_MAX 512     /* bytes of one line */

#define EP_NODE_AUDIENCE "edgeprov" /* the audience southbound tokens must carry */
#define EP_NODE_TOKEN_MAX 8192      /* longest bearer token accepted */
#define EP_NODE_STATUS_MAX 128      /* longest status text a node may report */

#endif
