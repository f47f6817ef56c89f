// hookgate's hook arguments for editors: `/// <reference path="types/index.d.ts" />`, or list this
// folder in a jsconfig.json "include" (README: Dashboard). One namespace per trigger.
/// <reference path="./common.d.ts" />
/// <reference path="./credentials-exchange.d.ts" />
/// <reference path="./pre-user-registration.d.ts" />
/// <reference path="./post-user-registration.d.ts" />
/// <reference path="./post-change-password.d.ts" />
/// <reference path="./send-phone-message.d.ts" />
