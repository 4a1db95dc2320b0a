# edgeprov_add_plugin(<target> <sources>...): builds an edgeprov plugin, a MODULE library
# named <target>.so with only its entry symbol visible, linked against the SDK headers.
# Used in-tree and shipped with the SDK for out-of-tree plugins.
function(edgeprov_add_plugin target)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE edgeprov::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,-z,now)
endfunction()
