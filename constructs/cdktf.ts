/**
 * The one import seam for the CDKTF library. cdktf 0.21 is archived; its community successor `cdktn` exports the
 * same names, so switching is a change to this file alone.
 */
export {
  TerraformDataSource,
  TerraformElement,
  TerraformProvider,
  TerraformResource,
  TerraformStack,
  TerraformOutput,
  Token,
  Fn,
  Testing,
  App,
  StringMap,
  Lazy,
} from 'cdktf';
export type {
  TerraformMetaArguments,
  TerraformResourceLifecycle,
  ITerraformDependable,
  IResolvable,
} from 'cdktf';
