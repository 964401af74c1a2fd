Feature: Retracting a wrong entry
  As a case worker of a national information bureau,
  I want to retract an entry that proved wrong, giving my reason,
  so that the person's status is right again, while auditors can still see what was entered, when, and why it was withdrawn.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And the case worker has recorded that AZ handed the person over to RU at "Goris" on 2020-12-01, according to the press

  Scenario: A transfer reported by the press proves wrong
    When the case worker retracts version 3, because "the newspaper confused him with another prisoner"
    Then the register answers 201
    And the case is at version 4
    And the person is held by AZ at "Hadrut"
    And the person was last seen alive on 2020-11-09

    When the auditor reads the case's history
    Then the register answers 200
    And the history lists 4 events, oldest first
    And event 1 of the history is "opened", and it stands
    And event 2 of the history is "captured", and it stands
    And event 3 of the history is "transferred", retracted by event 4
    And event 3 of the history still shows to_party "RU"
    And event 4 of the history is "retracted", and it stands
    And event 4 of the history still shows reason "the newspaper confused him with another prisoner"

  Scenario: The same entry cannot be retracted twice
    Given the case worker has retracted version 3, because "the newspaper confused him with another prisoner"
    When the case worker retracts version 3, because "entered twice by mistake"
    Then the register answers 409 "invalid-transition"
    And nothing was recorded: the case is still at version 4

  Scenario: An entry that does not exist cannot be retracted
    When the case worker retracts version 42, because "a slip of the keyboard"
    Then the register answers 409 "invalid-transition"
    And nothing was recorded: the case is still at version 3
